"""Reading an APDS list, as the adapter and its operations mixin both do: the pages as they
arrived, every page of a list (`walk`), and what a malformed record raises (it becomes a
RecordError; anything else is a bug and should surface). Apart from both so that neither
imports the other.

A list is paged by `offset` and `pageSize`, and every page after the first is asked "as of" the
first answer's `meta.referenceInstant` (PaginatedListMeta: "a consistent view of data across
multiple paged requests"). So once the first page has told the total and how many records a page
holds, the other pages can be asked side by side: a year of rights is one round trip's wait
times pages / concurrency, not pages round trips. A page that comes back shorter than the first
(a platform capping a page by bytes, say) leaves a gap, which is then read page by page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.apds.wire import PageMeta, WireError

# What a mapper can raise on a malformed record; anything else is a bug and should surface.
RECORD_FAULTS = (WireError, LookupError, TypeError, ValueError, ArithmeticError)


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Any]
    received_at: datetime  # when this page's response arrived


#: one page of a list: (offset, the view's referenceInstant or None for the first) -> the page and its meta
PageReader = Callable[[int, int | None], Awaitable[tuple[Page, PageMeta]]]


async def walk(read: PageReader, concurrency: int) -> list[Page]:
    """Every page of a list, in order, from one view: the first page, then the rest `concurrency` at a time."""
    first, meta = await read(0, None)
    step = len(first.records)
    if step == 0 or step >= meta.total:
        return [first]
    reference = meta.reference_instant
    slots = asyncio.Semaphore(concurrency)

    async def one(offset: int) -> tuple[int, Page]:
        async with slots:
            page, _ = await read(offset, reference)
        return offset, page

    rest = await asyncio.gather(*(one(offset) for offset in range(step, meta.total, step)))
    pages, cursor = [first], step
    for offset, page in rest:
        if cursor < offset:  # the page before came back short: read the gap one page at a time
            pages += await _in_turn(read, reference, cursor, offset)
        pages.append(page)
        cursor = offset + len(page.records)
    if rest and rest[-1][1].records and cursor < meta.total:  # a short last page; an empty one ends the list
        pages += await _in_turn(read, reference, cursor, meta.total)
    return pages


async def _in_turn(read: PageReader, reference: int, start: int, stop: int) -> list[Page]:
    """The pages of [start, stop), one after another; an empty page ends it (a total that overstates)."""
    pages: list[Page] = []
    while start < stop:
        page, _ = await read(start, reference)
        if not page.records:
            break
        if len(page.records) > stop - start:  # a full page from inside a gap runs into the next page read
            page = Page(page.records[:stop - start], page.received_at)
        pages.append(page)
        start += len(page.records)
    return pages
