"""Runs calls: SIP-thread screening, the asyncio runner that feeds engine events to call machines and applies
their actions, and the narrow interfaces it asks of the engine and of the domain."""
