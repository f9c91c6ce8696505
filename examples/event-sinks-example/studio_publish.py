"""What Studio does when an author publishes a unit: send openedx-events' XBLOCK_PUBLISHED.

The tutorial runs it in its Django project: ``django-admin shell < studio_publish.py``.
"""

from opaque_keys.edx.keys import UsageKey
from openedx_events.content_authoring.data import XBlockData
from openedx_events.content_authoring.signals import XBLOCK_PUBLISHED

unit = UsageKey.from_string("block-v1:EventSinks+Demo101+2026+type@vertical+block@intro_unit")
XBLOCK_PUBLISHED.send_event(xblock_info=XBlockData(usage_key=unit, block_type=unit.block_type))
