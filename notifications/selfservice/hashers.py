"""The hasher of USSD PINs: scrypt with parameters for an interactive check.

Django's own scrypt hasher (N=2^14, r=8, p=5) spends about a quarter of a second of
CPU per check, which with fifty sessions at once on a small server queues PIN checks
behind each other. scrypt's authors give N=2^14, r=8, p=1 for interactive logins; we
keep the 16 MiB of memory per guess (what makes guessing on graphics cards slow) and
use p=2. A four-digit PIN has only 10,000 values, so no hash makes a stolen one safe
for long: the lock after a few wrong tries guards the live channel, the database's own
protection guards the hashes.
"""

from django.contrib.auth.hashers import ScryptPasswordHasher


class PinScryptHasher(ScryptPasswordHasher):
    algorithm = "scrypt_pin"
    parallelism = 2
