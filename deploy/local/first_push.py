"""Send a first push through a running Herald (`make run`) and print what the device got."""

import asyncio
import json

from aiokafka import AIOKafkaProducer

from herald.device import Device
from proto import topics


async def main() -> None:
    device = Device("demo", "phone-1")
    welcome = await device.connect("ws://127.0.0.1:8700")
    print(f"device connected to node {welcome.node} (epoch {welcome.epoch})")
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9092")
    await producer.start()
    request = {"task_id": "hello-1", "app_id": "demo", "registration_ids": ["phone-1"],
               "push_flag": 0, "message": {"title": "Hello", "body": "from Herald"}}
    await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())
    await producer.stop()
    (push,) = await device.wait_for(1, timeout_s=10)
    print(f"received: {push.title!r} / {push.body!r} (task {push.task}, message {push.mid})")
    await device.close()


asyncio.run(main())
