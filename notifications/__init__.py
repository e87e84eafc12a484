"""Messaging: templated SMS and email to customers and staff, with a message log.

The messaging core (``services``, ``models``, ``backends``) imports none of the
other apps, so every app may call it. Callers pass a phone number or email
address and a reference string for the record the message is about; channel
modules that read from every app (USSD, inbound SMS) sit on top and come later.
"""
