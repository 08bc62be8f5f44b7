"""Online forms and applications (F1–F7): staff build forms without code, residents apply from
their phones, submissions reach staff and business systems with personal data sealed.

See README.md in this folder. The pure parts (form model, validation, conditions, Japanese
field rules) import nothing of aiohttp; the engines (attachments, webhooks, payments, OpenID
Connect) are storage-agnostic and tested against real daemons.
"""
