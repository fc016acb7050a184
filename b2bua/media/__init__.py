"""Audio helpers that need no pjsua2: G.711, tone synthesis and detection, RTP capture files."""
