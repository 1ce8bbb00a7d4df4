import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
application = get_wsgi_application()

# The objects of the loaded application live as long as the worker: the cyclic garbage
# collector stops visiting them (freeze), and runs its youngest generation every 50,000
# container allocations instead of 700. A 100-event ingestion request allocates a few thousand
# and collected about once per request, 0.33-0.43 ms each time; with this, 0.15-0.19 ms per
# request (docs/benchmarks.md). Cycles are still collected, a little later.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 100)
