"""The same load against ImageServer and a Gradio app doing the same simulated work, on this machine.

    python loadtest.py --swift PATH_TO_ImageServer [--runs 3] [--clients 1000,5000] [--skip-gradio]

It starts both servers itself on free loopback ports (Gradio from the virtual environment run.sh makes),
runs every workload --runs times against each, and prints a markdown table of medians. Workloads:
idle round trip; N jobs of 10 ms queued behind a 3 s job (overhead per job, gaps between one body's end and
the next one's start, messages per client); cancel of a running job on one slot (most bodies running at
once); N clients each holding an event stream (total time, server CPU seconds, peak RSS, messages), on plain
asyncio connections, stopped after --limit-s with its unfinished clients counted; S2 (--chat 1000x200): that
many clients each following a chat call of that many tokens on one slot, every call queued behind a 3 s job
(server CPU per token received, messages and tokens per client).
"""
import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid

import httpx

GATE_S = 3.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Connection:
    """One HTTP/1.1 connection on plain asyncio streams, for the many-clients workload: httpx's pool looks
    through every open connection on each request, which made the client, not the servers, the bottleneck
    at thousands of streams. Both servers get this same client there."""

    connects = None  # a semaphore bounding connection attempts in flight, set per workload

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port):
        async with cls.connects:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def close(self):
        self.writer.close()

    token = None  # the session the server gave this client, sent back as a bearer token

    async def send(self, method, path, body=None):
        """Sends a request; answers the status and the lower-cased headers, leaving the body to read."""
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
        if self.token:
            head += f"Authorization: Bearer {self.token}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError(f"{method} {path}: the server closed the connection")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def chunks(self, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b""):
                        pass
                    return
                chunk = await self.reader.readexactly(size)
                await self.reader.readexactly(2)
                yield chunk
        elif "content-length" in headers:
            if length := int(headers["content-length"]):
                yield await self.reader.readexactly(length)
        else:
            while chunk := await self.reader.read(65536):
                yield chunk

    async def json(self, method, path, body=None):
        status, headers = await self.send(method, path, body)
        data = b"".join([chunk async for chunk in self.chunks(headers)])
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data[:200]!r}")
        return json.loads(data)

    async def lines(self, headers):
        buffer = b""
        async for chunk in self.chunks(headers):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r").decode()

    def events(self, path):
        """Each SSE frame's (event name, data) of a GET."""
        async def lines():
            status, headers = await self.send("GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status}")
            async for line in self.lines(headers):
                yield line
        return sse_frames(lines())


def sse_events(response):
    """Each SSE frame's (event name, data) of a streaming httpx response."""
    return sse_frames(response.aiter_lines())


async def sse_frames(lines):
    """Yields each SSE frame's (event name, data) from an async iterator of lines."""
    event, data = None, []
    async for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


class SwiftServer:
    name = "ImageServer (Swift)"

    def __init__(self, binary, slots):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            # The test hooks give the load its own step times and the gap statistics; the httpx workloads
            # submit every job from one session (httpx keeps the cookie), so the caps per client are lifted.
            [binary, "--port", str(self.port), "--slots", str(slots), "--max-queue", "1000000", "--step-ms", "10",
             "--token-ms", "0", "--history", "100000", "--test-hooks", "--max-queued-per-client", "1000000",
             "--max-streams-per-client", "100000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.tokens = {}

    async def submit(self, client, steps, step_ms):
        body = {"prompt": "load", "steps": steps, "seed": 1, "step_ms": step_ms}
        response = await client.post(self.base + "/jobs", json=body)
        response.raise_for_status()
        answer = response.json()
        self.tokens[answer["task_id"]] = answer["owner_token"]
        return answer["task_id"]

    def owner(self, job):
        """The job's session, as the bearer token its routes ask for."""
        return {"Authorization": f"Bearer {self.tokens[job]}"}

    async def follow(self, client, job, started=None):
        """Counts status messages until the finished one; a dropped stream is reopened by id."""
        messages = 0
        for attempt in range(5):
            try:
                async with client.stream("GET", f"{self.base}/jobs/{job}/events", headers=self.owner(job)) as response:
                    async for event, data in sse_events(response):
                        messages += 1
                        if event != "status":
                            continue  # a preview note
                        status = json.loads(data)
                        if status["state"] == "running" and started is not None and not started.done():
                            started.set_result(True)
                        if status["state"] == "finished":
                            return messages
            except httpx.TransportError:
                await asyncio.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"the event stream of {job} kept failing")

    async def cancel(self, client, job):
        await client.delete(f"{self.base}/jobs/{job}", headers=self.owner(job))

    async def one_client(self):
        """A user: submits a 10 ms job and holds its event stream until the job ends, on one connection."""
        connection = await Connection.open(self.port)
        try:
            body = {"prompt": "load", "steps": 1, "seed": 1, "step_ms": 10}
            answer = await connection.json("POST", "/jobs", body)
            job, connection.token = answer["task_id"], answer["owner_token"]
            messages = 0
            async for event, data in connection.events(f"/jobs/{job}/events"):
                messages += 1
                if event == "status" and json.loads(data)["state"] == "finished":
                    return messages
            raise RuntimeError(f"the event stream of {job} ended before the job")
        finally:
            connection.close()

    async def waiting_client(self, session=None):
        """The flood workload's user: submits one 10 ms job and follows it to its end on one connection;
        answers how long it waited for its slot (the finished status's `queuedFor`, the server's own clock).
        With `session`, the job is submitted in that session instead of a new one of its own."""
        connection = await Connection.open(self.port)
        connection.token = session
        try:
            answer = await connection.json("POST", "/jobs", {"prompt": "one", "steps": 1, "seed": 1, "step_ms": 10})
            job, connection.token = answer["task_id"], answer["owner_token"]
            async for event, data in connection.events(f"/jobs/{job}/events"):
                status = json.loads(data) if event == "status" else {}
                if status.get("state") == "finished":
                    return status["queuedFor"]
            raise RuntimeError(f"the event stream of {job} ended before the job")
        finally:
            connection.close()

    async def chat_client(self, tokens):
        """S2's user: submits a chat call and follows its tokens until it ends, on one connection; answers
        (messages, tokens received)."""
        connection = await Connection.open(self.port)
        try:
            answer = await connection.json("POST", "/chat", {"prompt": "load", "tokens": tokens})
            job, connection.token = answer["task_id"], answer["owner_token"]
            messages = received = 0
            async for event, data in connection.events(f"/jobs/{job}/events"):
                messages += 1
                if event == "token":
                    received += 1
                elif event == "status" and json.loads(data)["state"] == "finished":
                    return messages, received
            raise RuntimeError(f"the event stream of {job} ended before the call")
        finally:
            connection.close()

    async def stats(self, client):
        return (await client.get(self.base + "/debug/stats")).json()

    async def reset(self, client):
        await client.post(self.base + "/debug/reset")

    async def ready(self, client):
        await client.get(self.base + "/queue")


class GradioServer:
    name = "Gradio"

    def __init__(self, python, slots):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/gradio_api"
        here = os.path.dirname(os.path.abspath(__file__))
        self.process = subprocess.Popen(
            [python, os.path.join(here, "gradio_app.py"), str(self.port), str(slots)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.fn = {}
        self.sessions = {}

    async def ready(self, client):
        config = (await client.get(f"http://127.0.0.1:{self.port}/config")).json()
        for dependency in config["dependencies"]:
            self.fn[dependency.get("api_name")] = dependency["id"]

    async def submit(self, client, steps, step_ms):
        session = uuid.uuid4().hex
        body = {"data": [steps, step_ms], "fn_index": self.fn["work"], "session_hash": session,
                "event_data": None, "trigger_id": None}
        response = await client.post(self.base + "/queue/join", json=body)
        response.raise_for_status()
        job = response.json()["event_id"]
        self.sessions[job] = session
        return job

    async def follow(self, client, job, started=None):
        messages = 0
        session = self.sessions[job]
        async with client.stream("GET", f"{self.base}/queue/data", params={"session_hash": session}) as response:
            async for _, data in sse_events(response):
                message = json.loads(data)
                kind = message.get("msg")
                if kind == "heartbeat":
                    continue
                messages += 1
                if kind == "process_starts" and started is not None and not started.done():
                    started.set_result(True)
                if kind in ("process_completed", "close_stream", "unexpected_error"):
                    break
        return messages

    async def one_client(self):
        connection = await Connection.open(self.port)
        try:
            session = uuid.uuid4().hex
            body = {"data": [1, 10], "fn_index": self.fn["work"], "session_hash": session,
                    "event_data": None, "trigger_id": None}
            await connection.json("POST", "/gradio_api/queue/join", body)
            messages, last = 0, None
            async for _, data in connection.events(f"/gradio_api/queue/data?session_hash={session}"):
                last = json.loads(data)
                kind = last.get("msg")
                if kind == "heartbeat":
                    continue
                messages += 1
                if kind == "process_completed":
                    return messages
                if kind in ("close_stream", "unexpected_error"):
                    break
            raise RuntimeError(f"the stream of session {session} ended before its job; its last message: {last}")
        finally:
            connection.close()

    async def chat_client(self, tokens):
        connection = await Connection.open(self.port)
        try:
            session = uuid.uuid4().hex
            body = {"data": [tokens, 0], "fn_index": self.fn["chat"], "session_hash": session,
                    "event_data": None, "trigger_id": None}
            await connection.json("POST", "/gradio_api/queue/join", body)
            messages = received = 0
            async for _, data in connection.events(f"/gradio_api/queue/data?session_hash={session}"):
                kind = json.loads(data).get("msg")
                if kind == "heartbeat":
                    continue
                messages += 1
                if kind == "process_generating":
                    received += 1
                if kind == "process_completed":
                    return messages, received
                if kind in ("close_stream", "unexpected_error"):
                    break
            raise RuntimeError(f"the stream of session {session} ended before its call")
        finally:
            connection.close()

    async def cancel(self, client, job):
        await client.post(self.base + "/cancel", json={
            "session_hash": self.sessions[job], "fn_index": self.fn["work"], "event_id": job})

    async def call(self, client, api):
        job = (await client.post(f"{self.base}/call/{api}", json={"data": []})).json()["event_id"]
        async with client.stream("GET", f"{self.base}/call/{api}/{job}") as response:
            async for event, data in sse_events(response):
                if event == "complete":
                    return json.loads(data)[0]
                if event == "error":
                    raise RuntimeError(data)

    async def stats(self, client):
        stats = await self.call(client, "stats")
        return {"most": stats["most"], "spans": [{"start": s, "end": e} for s, e in stats["spans"]]}

    async def reset(self, client):
        await self.call(client, "reset")


async def wait_ready(server, client):
    for _ in range(600):
        try:
            await server.ready(client)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} did not start")


async def idle_round_trip(server, client, trials=20):
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        job = await server.submit(client, 1, 10)
        await server.follow(client, job)
        times.append(time.perf_counter() - start)
    return {"idle round trip ms": statistics.median(times) * 1000}


async def backlog(server, client, count):
    await server.reset(client)
    started = asyncio.get_running_loop().create_future()
    gate = await server.submit(client, 1, int(GATE_S * 1000))
    gate_follow = asyncio.create_task(server.follow(client, gate, started))
    await started
    jobs = [await server.submit(client, 1, 10) for _ in range(count)]
    messages = await asyncio.gather(*(server.follow(client, job) for job in jobs))
    await gate_follow
    spans = sorted((s["start"], s["end"]) for s in (await server.stats(client))["spans"])
    gate_end = max(end for start, end in spans if end - start > GATE_S / 2)
    after = [span for span in spans if span[0] >= gate_end - 0.001]
    gaps = [max(0.0, b[0] - a[1]) * 1000 for a, b in zip([(0, gate_end)] + after, after)]
    overhead = ((after[-1][1] - gate_end) - sum(end - start for start, end in after)) / len(after)
    gaps.sort()
    return {
        f"{count} behind a gate: overhead per job ms": overhead * 1000,
        f"{count} behind a gate: gap p50 ms": gaps[len(gaps) // 2],
        f"{count} behind a gate: gap p90 ms": gaps[int(len(gaps) * 0.9)],
        f"{count} behind a gate: gap max ms": gaps[-1],
        f"{count} behind a gate: messages per client": statistics.mean(messages),
    }


async def cancel_running(server, client):
    await server.reset(client)
    started = asyncio.get_running_loop().create_future()
    running = await server.submit(client, 100, 20)  # 2 s
    follower = asyncio.create_task(server.follow(client, running, started))
    await started
    queued = await server.submit(client, 1, 10)
    await server.cancel(client, running)
    await server.follow(client, queued)
    await follower
    await asyncio.sleep(2.5)  # a thread that kept running after its cancel has ended by now
    return {"cancel on 1 slot: most running at once": (await server.stats(client))["most"]}


async def many_clients(server, client, count, limit_s):
    pid = server.process.pid
    cpu_before = proc_cpu_seconds(pid)

    failures = {}

    Connection.connects = asyncio.Semaphore(256)

    async def one():
        try:
            return await server.one_client()
        except Exception as error:  # counted as failed; the first few are shown
            if failures.setdefault(type(error).__name__, 0) < 3:
                print(f"  {server.name}: a client failed: {error!r}", file=sys.stderr)
            failures[type(error).__name__] += 1
            return None

    start = time.perf_counter()
    clients = [asyncio.create_task(one()) for _ in range(count)]
    done, pending = await asyncio.wait(clients, timeout=limit_s)
    total, cpu, rss = time.perf_counter() - start, proc_cpu_seconds(pid) - cpu_before, proc_peak_rss_mb(pid)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    messages = [task.result() for task in done if task.result() is not None]
    return {
        f"{count} clients: failed": len(done) - len(messages),
        f"{count} clients: unfinished after the limit": len(pending),
        f"{count} clients: total s": total,
        f"{count} clients: server CPU s": cpu,
        f"{count} clients: server CPU ms per finished client": cpu * 1000 / max(1, len(messages)),
        f"{count} clients: server peak RSS MB": rss,
        f"{count} clients: messages per client": statistics.mean(messages) if messages else 0,
    }


async def chat_clients(server, client, count, tokens, limit_s):
    """S2: `count` clients each submit a chat call of `tokens` tokens (0 ms each) on one slot, queued behind
    a 3 s gate so that every client follows its call from the start, and read every token over SSE."""
    pid = server.process.pid
    Connection.connects = asyncio.Semaphore(256)
    started = asyncio.get_running_loop().create_future()
    gate = await server.submit(client, 1, int(GATE_S * 1000))
    gate_follow = asyncio.create_task(server.follow(client, gate, started))
    await started
    cpu_before = proc_cpu_seconds(pid)
    start = time.perf_counter()
    calls = [asyncio.create_task(server.chat_client(tokens)) for _ in range(count)]
    done, pending = await asyncio.wait(calls, timeout=limit_s)
    total, cpu = time.perf_counter() - start, proc_cpu_seconds(pid) - cpu_before
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await gate_follow
    finished = [task.result() for task in done if task.exception() is None]
    received = sum(tokens for _, tokens in finished)
    return {
        f"S2 {count} chat clients x {tokens} tokens: failed or unfinished": count - len(finished),
        f"S2 {count} chat clients x {tokens} tokens: total s": total,
        f"S2 {count} chat clients x {tokens} tokens: server CPU us per token": cpu * 1e6 / max(1, received),
        f"S2 {count} chat clients x {tokens} tokens: messages per client":
            statistics.mean(m for m, _ in finished) if finished else 0,
        f"S2 {count} chat clients x {tokens} tokens: tokens per client":
            statistics.mean(t for _, t in finished) if finished else 0,
    }


async def flood(server, client, flood_jobs, others, fifo):
    """One client (the httpx client: one session) queues `flood_jobs` jobs of 10 ms, then `others` clients
    submit one job each; answers their waits' p50 and p99 (the server's `queuedFor`). Each from its own
    session, fair share serves them ahead of the flood's backlog. The FIFO baseline (`fifo`) submits the same
    jobs in the flooder's session: fair share serves one key's calls in arrival order, so they wait behind the
    whole flood as in a FIFO queue. The flood's jobs left afterwards are cancelled."""
    Connection.connects = asyncio.Semaphore(256)
    flooded = [await server.submit(client, 1, 10) for _ in range(flood_jobs)]
    session = server.tokens[flooded[0]] if fifo else None
    waits = sorted(await asyncio.gather(*(server.waiting_client(session) for _ in range(others))))
    for job in flooded:
        await server.cancel(client, job)
    label = f"flood of {flood_jobs} + {others} clients x 1 job, {'FIFO (one session)' if fifo else 'fair share'}: wait"
    return {f"{label} p50 s": waits[len(waits) // 2], f"{label} p99 s": waits[int(len(waits) * 0.99)]}


async def measure(server, runs, clients, backlogs, client_runs, limit_s, chat=(0, 0), flood_shape=(0, 0)):
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(None), limits=limits) as client:
        await wait_ready(server, client)
        await idle_round_trip(server, client, trials=3)  # warm up
        rows = {}

        def record(label, figures):
            for key, value in figures.items():
                rows.setdefault(key, []).append(value)
            print(f"  {server.name}, {label}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()),
                  file=sys.stderr, flush=True)

        for run in range(runs):
            figures = await idle_round_trip(server, client)
            for count in backlogs:
                figures.update(await backlog(server, client, count))
            figures.update(await cancel_running(server, client))
            record(f"run {run + 1}", figures)
        flood_jobs, flood_others = flood_shape
        for run in range(client_runs if flood_others and isinstance(server, SwiftServer) else 0):
            for fifo in (False, True):
                record(f"flood, run {run + 1}", await flood(server, client, flood_jobs, flood_others, fifo))
        chat_count, chat_tokens = chat
        for run in range(client_runs if chat_count else 0):
            record(f"S2, run {run + 1}", await chat_clients(server, client, chat_count, chat_tokens, limit_s))
        # Last: a workload stopped at its limit may leave jobs queued on the server.
        for run in range(client_runs):
            for count in clients:
                record(f"{count} clients, run {run + 1}", await many_clients(server, client, count, limit_s))
        return {key: statistics.median(values) for key, values in rows.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--swift", required=True)
    parser.add_argument("--gradio-python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", default="1000,5000")
    parser.add_argument("--gradio-clients", default="1000")
    parser.add_argument("--backlogs", default="50,200")
    parser.add_argument("--skip-gradio", action="store_true")
    parser.add_argument("--chat", default="1000x200",
                        help="S2: CLIENTSxTOKENS chat calls followed over SSE; 0x0 skips it")
    parser.add_argument("--flood", default="1000x1000",
                        help="FLOODxOTHERS: one client queues FLOOD jobs, OTHERS clients one each, on the Swift "
                             "server, fair share against a FIFO baseline; 0x0 skips it")
    parser.add_argument("--client-runs", type=int, default=1,
                        help="runs of the many-clients workloads (Gradio takes minutes for 1,000 clients)")
    parser.add_argument("--limit-s", type=float, default=600,
                        help="a many-clients workload is stopped after this long; its unfinished clients are counted")
    arguments = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    backlogs = [int(n) for n in arguments.backlogs.split(",") if n]
    chat = tuple(int(n) for n in arguments.chat.split("x"))
    flood_shape = tuple(int(n) for n in arguments.flood.split("x"))
    results = {}
    servers = [(SwiftServer(arguments.swift, 1), [int(n) for n in arguments.clients.split(",") if n])]
    if not arguments.skip_gradio:
        servers.append((GradioServer(arguments.gradio_python, 1), [int(n) for n in arguments.gradio_clients.split(",") if n]))
    try:
        for server, clients in servers:
            results[server.name] = asyncio.run(
                measure(server, arguments.runs, clients, backlogs, arguments.client_runs, arguments.limit_s, chat,
                        flood_shape))
    finally:
        for server, _ in servers:
            server.process.terminate()
            server.process.wait()
    names = list(results)
    keys = []
    for figures in results.values():
        keys += [key for key in figures if key not in keys]
    print(f"| workload ({arguments.runs} runs, medians; many clients: {arguments.client_runs}) | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{results[n][key]:.3g}" if key in results[n] else "not run" for n in names) + " |")


if __name__ == "__main__":
    main()
