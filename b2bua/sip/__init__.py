"""The only package that imports pjsua2 (``engine``, ``legs``, ``call_ops``, ``media_ops``, ``endpoint``,
``build_info``). Importing this package, ``config`` or ``types`` does not load pjsua2."""
