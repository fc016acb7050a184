"""Sans-I/O call logic: state machines take events and the time and return actions; no pjsua2, no awaits."""
