"""The only package that imports pjsua2 (in ``engine``). Importing this package does not load pjsua2."""
