"""Fake providers: small aiohttp apps that speak each provider's wire format."""
