"""Send a first push through a running Herald (`make run`) and print what the device got."""

import asyncio
import json

from aiokafka import AIOKafkaProducer

from herald.apps import new_app
from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.frames import message_of


async def main() -> None:
    store = RedisStore("redis://127.0.0.1:6379/0")
    app = await store.get_app("demo")
    if app is None:
        app = new_app("demo")
        await store.put_app(app)
    await store.close()

    device = Device(app.app_id, app.client_key)
    welcome = await device.connect("ws://127.0.0.1:8700")
    print(f"device {device.registration_id} connected to node {welcome.node}")
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9092")
    await producer.start()
    request = {"task_id": "hello-1", "app_id": "demo",
               "registration_ids": [device.registration_id],
               "push_flag": 0, "message": {"title": "Hello", "body": "from Herald"}}
    await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())
    await producer.stop()
    (push,) = await device.wait_for(1, timeout_s=10)
    message = message_of(push)
    print(f"received: {message.title!r} / {message.body!r} (task {push.task})")
    await device.close()


asyncio.run(main())
