import time

# When this process started: the health probe's uptime counts from here.
STARTED_AT = time.monotonic()
