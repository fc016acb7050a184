"""Telecommuter domain: users, modes, dialling rules. No pjsua2 here."""
