"""Collections and accounting: arrears ageing, reminders and notices, statements,
the general-ledger export and period close. See docs/collections.md.
"""
