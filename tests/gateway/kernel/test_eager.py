"""Coroutines started eagerly (gateway/kernel/eager.py): a value in hand costs no task, a wait
carries on under a task, loaders' futures shared by several eager starts, context kept apart."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from gateway.kernel.eager import Started, eagerly, gather_eagerly

LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("LABEL", default="outer")


async def in_hand(value: int) -> int:
    done = asyncio.get_running_loop().create_future()
    done.set_result(value)
    return await done  # a done future: no wait


async def waiting_on(future: asyncio.Future[int], plus: int = 0) -> int:
    return await future + plus


async def test_a_coroutine_that_never_waits_is_its_value_without_a_task() -> None:
    before = len(asyncio.all_tasks())
    assert eagerly(in_hand(7)) == 7
    assert len(asyncio.all_tasks()) == before


async def test_a_failure_before_any_wait_is_raised_at_once() -> None:
    async def fails() -> int:
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once"):
        eagerly(fails())


async def test_a_coroutine_that_waits_carries_on_when_awaited_in_a_task() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    started = eagerly(waiting_on(future, 1))
    assert isinstance(started, Started)
    task = asyncio.ensure_future(started)
    await asyncio.sleep(0)
    assert not task.done()
    future.set_result(41)
    assert await task == 42


async def test_several_eager_starts_may_wait_on_one_future_each_in_its_own_task() -> None:
    """A loader's future awaited by many fields: asyncio's C future refuses a second awaiter while a
    first has raised its 'a task is taking me' flag and no task has taken it yet."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    started = [eagerly(waiting_on(future, n)) for n in range(5)]
    tasks = [asyncio.ensure_future(s) for s in started]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    future.set_result(10)
    assert await asyncio.gather(*tasks) == [10, 11, 12, 13, 14]


async def test_gather_eagerly_issues_every_load_before_waiting_and_keeps_the_order() -> None:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[int]] = [loop.create_future() for _ in range(3)]
    asked: list[int] = []

    async def load(index: int) -> int:
        asked.append(index)
        return await futures[index]

    gathering = asyncio.ensure_future(gather_eagerly(load(0), load(1), load(2), in_hand(99)))
    await asyncio.sleep(0)
    assert asked == [0, 1, 2]  # all asked for before the first answer came
    for index in (2, 0, 1):
        futures[index].set_result(index * 10)
    assert await gathering == [0, 10, 20, 99]


async def test_a_context_variable_set_in_an_eager_start_stays_in_it() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def labelled() -> str:
        LABEL.set("inner")
        await future
        return LABEL.get()

    started = eagerly(labelled())
    assert LABEL.get() == "outer"  # the start's own copy of the context, as a task's would be
    task = asyncio.ensure_future(started)  # type: ignore[arg-type]
    future.set_result(None)
    assert await task == "inner"
