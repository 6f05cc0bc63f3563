"""The Gradio side of the comparison: the same simulated work as ImageServer (a sleep per step, progress
per step), one listener with concurrency_limit = slots, a generator streaming tokens with the same limit (S2),
a stats listener in its own unlimited group that reports the bodies' spans and the most running at once,
counted inside the function.

Usage: python gradio_app.py PORT SLOTS
"""
import sys
import threading
import time

import gradio as gr

PORT, SLOTS = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
state = {"running": 0, "most": 0, "spans": []}


def work(steps, step_ms, progress=gr.Progress()):
    with lock:
        state["running"] += 1
        state["most"] = max(state["most"], state["running"])
        start = time.monotonic()
    try:
        for _ in progress.tqdm(range(int(steps))):
            time.sleep(float(step_ms) / 1000)
        return "done"
    finally:
        with lock:
            state["running"] -= 1
            state["spans"].append((start, time.monotonic()))
            del state["spans"][:-5000]


def chat(tokens, token_ms):
    """S2: a generator streaming `tokens` words, one per yield, as a text model would."""
    text = ""
    for index in range(int(tokens)):
        if token_ms:
            time.sleep(float(token_ms) / 1000)
        text += " word" if index else "About load:"
        yield text


def stats():
    with lock:
        return {"most": state["most"], "spans": list(state["spans"])}


def reset():
    with lock:
        state["most"] = state["running"]
        state["spans"].clear()
    return {}


with gr.Blocks() as demo:
    steps = gr.Number(value=1)
    step_ms = gr.Number(value=10)
    out = gr.Textbox()
    run = gr.Button("run")
    event = run.click(work, [steps, step_ms], out, concurrency_limit=SLOTS, api_name="work")
    tokens = gr.Number(value=200)
    token_ms = gr.Number(value=0)
    gr.Button("chat").click(chat, [tokens, token_ms], gr.Textbox(), concurrency_limit=SLOTS, api_name="chat")
    gr.Button("stop").click(None, None, None, cancels=[event], api_name="stop")
    gr.Button("stats").click(stats, None, gr.JSON(), api_name="stats", concurrency_limit=None)
    gr.Button("reset").click(reset, None, gr.JSON(), api_name="reset", concurrency_limit=None)

demo.queue(default_concurrency_limit=SLOTS, max_size=None).launch(
    server_name="127.0.0.1", server_port=PORT, show_error=True, quiet=True
)
