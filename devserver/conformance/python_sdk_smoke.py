"""Runs the official Temporal Python SDK against a running convo devserver.

Usage: pip install temporalio && python python_sdk_smoke.py 127.0.0.1:7233

A worker and a client from another language's SDK start a workflow, signal it, wait on a
durable timer (skipped through TestService), run an activity with a server-side retry and
read the result back. Exits non-zero on any mismatch.
"""

import asyncio
import sys
import uuid
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.service import TestService
from temporalio.worker import Worker

attempts = {"n": 0}


@activity.defn
async def greet(name: str) -> str:
    attempts["n"] += 1
    if attempts["n"] < 2:
        raise RuntimeError("transient")  # retried by the server
    return f"hello {name} (attempt {activity.info().attempt})"


@workflow.defn
class Smoke:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.signal
    def add(self, name: str) -> None:
        self.names.append(name)

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: len(self.names) > 0)
        await asyncio.sleep(24 * 3600)  # a durable 24 h timer
        return await workflow.execute_activity(
            greet,
            self.names[0],
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


async def main(address: str) -> None:
    client = await Client.connect(address)
    queue = f"py-smoke-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[Smoke], activities=[greet]):
        handle = await client.start_workflow(Smoke.run, id=f"smoke-{uuid.uuid4()}", task_queue=queue)
        await handle.signal(Smoke.add, "convo")
        # Let a day pass in virtual time: the 24 h timer fires at once.
        test_service = TestService(client.service_client)
        day = Duration()
        day.FromTimedelta(timedelta(hours=24))
        await test_service.unlock_time_skipping_with_sleep(SleepRequest(duration=day))
        result = await handle.result()
        assert result == "hello convo (attempt 2)", result
        kinds = [e.event_type for e in (await handle.fetch_history()).events]
        print(f"python sdk ok: {result!r}, {len(kinds)} history events")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7233"))
