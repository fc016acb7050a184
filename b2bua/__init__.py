"""SIP back-to-back user agent for telecommuter bridging, on PJSIP (pjsua2)."""

__version__ = "0.1.0"
