"""An in-memory LRU cache of serialised results of succeeded (hence immutable) jobs."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any


class ResultCache:
    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, owner: str, job_id: str) -> bytes | None:
        with self._lock:
            item = self._items.get(job_id)
            if item is None or item[0] != owner:
                return None
            self._items.move_to_end(job_id)
            return item[1]

    def put(self, owner: str, job_id: str, result: dict[str, Any]) -> bytes:
        body = json.dumps(result).encode()
        with self._lock:
            self._items[job_id] = (owner, body)
            self._items.move_to_end(job_id)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return body
