"""`make bench`: ChatKit's own cost next to the model's (issue 12's goals), measured.

Starts the fake model, ChatKit as production runs it (`manage.py serve`, PostgreSQL, Redis,
DEBUG off, limits on but high), optionally a baseline commit's ChatKit the same way and the
Node/Express peer, and measures each figure in interleaved rounds (round 1: every target once,
round 2: every target again...), against the fake model called directly. CPU is the ChatKit
workers' own (/proc utime + stime), so the fake and this load generator, separate processes
on the same cores, do not count. Prints a table (min, median, max over rounds, next to each
goal) and writes JSON.

    python bench/run.py                 # the full run (more than an hour on 2 cores)
    python bench/run.py --quick         # the smoke run: tiny counts, one round, not judged
    python bench/run.py --only 1,4 --no-baseline --no-node --markdown
    python bench/run.py --quick --only 9 --no-baseline --no-node \
        --database-prefix chatkit_bench_mine --redis-dbs 9,10   # beside another run
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
import procs

BASELINE_COMMIT = "e6a5707"  # main before the performance work (issue 12)
FIGURES = ("1", "2", "3", "4", "5", "6", "7", "8", "9")
DATABASE_PREFIX = "chatkit_bench_load"  # this tree's database; the baseline's adds _baseline
REDIS_DBS = "5,6"  # this tree's Redis db, the baseline's (each is flushed at every start)


@dataclasses.dataclass
class Sizes:
    """Counts and durations of one run; `QUICK` is the smoke run's."""

    chunk_turns: int = 5  # figure 1: turns of each reply length, per round
    long_reply: int = 2000
    short_reply: int = 20
    json_turns: int = 500  # figure 3, per entry point
    json_visitors: int = 8
    ttft_turns: int = 50  # figure 4
    open_rate: float = 100  # figure 5: new streams a second
    open_seconds: float = 60
    direct_open_seconds: float = 20
    arrival_timeout: float = 30  # an open-loop arrival not served by then has failed
    closed_visitors: tuple[int, ...] = (50, 200)  # figure 6
    closed_warmup: float = 2
    closed_seconds: float = 10
    paced_streams: int = 2000  # figures 2 and 7: one worker, a token a second
    paced_window: float = 15
    idle_streams: int = 10000  # figure 7: two workers, a token every 10 s
    idle_hold: float = 30
    idle_rounds: int = 1  # the 10,000-stream hold runs in the first round(s) only
    idle_baseline: bool = False  # and for this tree only (opening 10,000 takes minutes)
    ramp_rate: float = 400  # new streams a second while opening many
    ramp_pending: int = 200  # at most this many being opened at once (no thundering herd)
    ping_seconds: float = 5  # CHATKIT_STREAM_PING_SECONDS while holding idle streams


QUICK = Sizes(
    chunk_turns=2,
    long_reply=400,
    json_turns=20,
    json_visitors=4,
    ttft_turns=5,
    open_rate=10,
    open_seconds=2,
    direct_open_seconds=1,
    closed_visitors=(5, 10),
    closed_warmup=0.5,
    closed_seconds=1.5,
    paced_streams=40,
    paced_window=2,
    idle_streams=80,
    idle_hold=2,
    ramp_rate=100,
    idle_baseline=True,
)


def percentile(values: list[float], q: float, scale: float = 1.0) -> float | None:
    """The nearest-rank percentile (q in 0..1) times `scale`; None when nothing succeeded."""
    if not values:
        return None
    ordered = [v * scale for v in sorted(values)]
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.sizes = QUICK if args.quick else Sizes()
        self.only = set(args.only.split(",")) if args.only else set(FIGURES)
        self.values: dict[str, dict[str, list[float]]] = {}  # target -> key -> per round
        self.notes: list[dict] = []  # what else each scenario saw (errors by kind, counts)
        self.direct: dict[str, float] = {}  # this round's direct-to-fake figures
        self.visitor = 0
        self.round = 0
        # Figure 9's key, one for the whole run: its database keeps the canary sealed with it
        # from round to round, and a key of its own each round would be refused.
        self.encryption_key = base64.urlsafe_b64encode(os.urandom(32)).decode()

    # --- bookkeeping --------------------------------------------------------------------

    def wants(self, *figures: str) -> bool:
        return any(f in self.only for f in figures)

    def record(self, target: str, key: str, value: float | None, **detail) -> None:
        if value is not None:
            self.values.setdefault(target, {}).setdefault(key, []).append(value)
        self.notes.append(
            {"round": self.round + 1, "target": target, "key": key, "value": value, **detail}
        )
        shown = "n/a" if value is None else f"{value:.4g}"
        extra = " ".join(f"{k}={v}" for k, v in detail.items() if v not in ({}, None, []))
        print(f"  [{target}] {key} = {shown} {extra}", flush=True)

    def visitors(self, n: int) -> range:
        first, self.visitor = self.visitor, self.visitor + n
        return range(first, first + n)

    # --- the direct-to-fake baseline ----------------------------------------------------

    async def direct_to_fake(self, fake: procs.Fake) -> None:
        s = self.sizes
        async with load.client() as http:
            if self.wants("4"):
                fake.configure(reply_tokens=5)
                await load.direct_stream(http, fake.base_url)
                runs = [await load.direct_stream(http, fake.base_url) for _ in range(s.ttft_turns)]
                ttfts = [r.ttft for r in runs if r.ttft is not None]
                self.direct["ttft_one"] = percentile(ttfts, 0.5, 1e3)
                self.record("direct", "ttft_one_ms", self.direct["ttft_one"])
            if self.wants("5"):
                fake.configure(ttft=0.2, itl=0.02, reply_tokens=50)
                count = int(s.open_rate * s.direct_open_seconds)
                runs = await load.open_loop(
                    s.open_rate, count, lambda i: load.direct_stream(http, fake.base_url)
                )
                ttfts = [r.ttft * 1e3 for r in runs if r.ttft is not None and not r.error]
                self.direct["ttft_open_p50"] = percentile(ttfts, 0.5)
                self.direct["ttft_open_p99"] = percentile(ttfts, 0.99)
                errors = Counter(r.error for r in runs if r.error)
                self.record(
                    "direct", "ttft_open_p50_ms", self.direct["ttft_open_p50"], errors=dict(errors)
                )
                self.record("direct", "ttft_open_p99_ms", self.direct["ttft_open_p99"])
        if self.wants("6"):
            fake.configure(ttft=0.2)
            for visitors in s.closed_visitors:
                result = await self.closed(
                    visitors,
                    lambda v: asyncio.sleep(0, ""),
                    lambda _s, v: self._direct_json(fake, v),
                )
                self.direct[f"json_p50_{visitors}"] = percentile(result.latencies, 0.5, 1e3)
                self.direct[f"json_p99_{visitors}"] = percentile(result.latencies, 0.99, 1e3)
                self.record(
                    "direct", f"json_p50_{visitors}_ms", self.direct[f"json_p50_{visitors}"]
                )
                self.record(
                    "direct", f"json_p99_{visitors}_ms", self.direct[f"json_p99_{visitors}"]
                )
                self.record(
                    "direct",
                    f"turns_per_s_{visitors}",
                    result.turns_per_second,
                    errors=dict(result.errors),
                )

    async def _direct_json(self, fake: procs.Fake, visitor: int) -> None:
        await load.direct_json(self._http, fake.base_url, "", visitor)

    async def closed(self, visitors: int, setup, turn) -> load.ClosedLoop:
        s = self.sizes
        async with load.client() as self._http:
            return await load.closed_loop(
                visitors,
                setup,
                turn,
                warmup=s.closed_warmup,
                duration=s.closed_seconds,
                first_visitor=self.visitors(visitors).start,
            )

    # --- ChatKit ------------------------------------------------------------------------

    async def chatkit(self, ck: procs.ChatKit, fake: procs.Fake) -> None:
        s, name = self.sizes, ck.name
        if self.wants("1", "3", "4", "5", "6"):
            ck.start(workers=2)
            try:
                await self.warm_up(ck, fake)
                if self.wants("1"):
                    await self.chunk_cost(ck, fake)
                if self.wants("3"):
                    await self.turn_cost(ck, fake, "")
                if self.wants("4"):
                    await self.ttft_alone(ck, fake)
                if self.wants("5"):
                    await self.ttft_open(ck, fake)
                if self.wants("6"):
                    await self.json_closed(name, fake, ck.url)
            finally:
                ck.stop()
        if self.wants("3"):
            ck.start(workers=2, CHATKIT_RATELIMIT_ENABLED="false")
            try:
                await self.warm_up(ck, fake)
                await self.turn_cost(ck, fake, "_limits_off")
            finally:
                ck.stop()
        if self.wants("2", "7"):
            ck.start(
                workers=1, CHATKIT_REPLY_TIMEOUT=self.hold_timeout(s.paced_streams, s.paced_window)
            )
            try:
                await self.warm_up(ck, fake)
                await self.open_streams(
                    ck, fake, s.paced_streams, itl=1.0, window=s.paced_window, tag="paced"
                )
            finally:
                ck.stop()
        if (
            self.wants("7")
            and self.round < s.idle_rounds
            and (s.idle_baseline or name == "chatkit")
        ):
            ck.start(
                workers=2,
                CHATKIT_STREAM_PING_SECONDS=str(s.ping_seconds),
                CHATKIT_REPLY_TIMEOUT=self.hold_timeout(s.idle_streams, s.idle_hold),
            )
            try:
                await self.warm_up(ck, fake)
                await self.open_streams(
                    ck, fake, s.idle_streams, itl=10.0, window=s.idle_hold, tag="idle"
                )
            finally:
                ck.stop()

    @staticmethod
    def open_wait(count: int) -> float:
        """How long `open_streams` waits for `count` streams to open and answer (or fail).

        Opening is bounded by the server's CPU (tens of ms a stream on a busy 2-core box),
        not by the arrival rate: as long as 5 streams a second plus the first-token timeout
        would take."""
        return count / 5 + 90

    def hold_timeout(self, count: int, window: float) -> str:
        """CHATKIT_REPLY_TIMEOUT for a scenario holding `count` streams: longer than the
        first stream is held (the whole ramp, then the window), so that no stream ends as
        `reply_timeout` (300 s by default) while the last ones are still being opened."""
        return str(round(self.open_wait(count) + window + 120))

    async def warm_up(self, ck: procs.ChatKit, fake: procs.Fake) -> None:
        """Every entry point once on several connections, so that each worker has imported
        and connected what it needs before anything is measured."""
        fake.configure(reply_tokens=5)
        ids = self.visitors(4 * ck.workers)
        async with load.client() as http:

            async def visitor(v: int) -> None:
                session = await load.new_session(http, ck.url, v)
                await load.stream_turn(http, ck.url, session, v)
                await load.v1_turn(http, ck.url, session, v)
                await load.seed_chat(http, ck.url, await load.seed_session(http, ck.url, v), v)

            await asyncio.gather(*(visitor(v) for v in ids))

    async def chunk_cost(self, ck: procs.ChatKit, fake: procs.Fake) -> None:
        """Figure 1: worker CPU per turn of a long and a short reply sent back to back."""
        s, per_turn = self.sizes, {}
        async with load.client() as http:
            for tokens in (s.long_reply, s.short_reply):
                fake.configure(reply_tokens=tokens)
                ids = self.visitors(s.chunk_turns + 1)
                sessions = [await load.new_session(http, ck.url, v) for v in ids]
                await load.stream_turn(http, ck.url, sessions[0], ids[0])  # warm-up
                before = ck.worker_cpu()
                runs = [
                    await load.stream_turn(http, ck.url, session, v)
                    for session, v in zip(sessions[1:], ids[1:], strict=True)
                ]
                per_turn[tokens] = (ck.worker_cpu() - before) / len(runs)
                errors = Counter(r.error for r in runs if r.error)
                if errors:
                    print(f"  [{ck.name}] figure 1: errors {dict(errors)}")
        chunk = (per_turn[s.long_reply] - per_turn[s.short_reply]) / (s.long_reply - s.short_reply)
        self.record(
            ck.name,
            "cpu_per_chunk_one_us",
            chunk * 1e6,
            per_turn_ms={k: round(v * 1e3, 2) for k, v in per_turn.items()},
        )

    async def turn_cost(self, ck: procs.ChatKit, fake: procs.Fake, suffix: str) -> None:
        """Figure 3: worker CPU per JSON turn with a one-token reply, v1 and seed."""
        s = self.sizes
        fake.configure(reply_tokens=1)
        entry_points = {
            "health": (load.no_session, load.health),
            "v1": (load.new_session, load.v1_turn),
            "seed": (load.seed_session, load.seed_chat),
        }
        async with load.client() as http:
            for label, (setup, turn) in entry_points.items():
                ids = list(self.visitors(s.json_visitors))
                sessions = [await setup(http, ck.url, v) for v in ids]
                await asyncio.gather(
                    *(turn(http, ck.url, ses, v) for ses, v in zip(sessions, ids, strict=True))
                )
                left, errors = s.json_turns, Counter()

                async def visitor(session: str, v: int, turn=turn, errors=errors) -> None:
                    nonlocal left
                    while left > 0:
                        left -= 1
                        try:
                            await turn(http, ck.url, session, v)
                        except Exception as exc:
                            errors[load.failure_kind(exc)] += 1

                before = ck.worker_cpu()
                await asyncio.gather(
                    *(visitor(ses, v) for ses, v in zip(sessions, ids, strict=True))
                )
                cpu = ck.worker_cpu() - before
                self.record(
                    ck.name,
                    f"cpu_per_turn_{label}{suffix}_ms",
                    cpu / s.json_turns * 1e3,
                    errors=dict(errors),
                )

    async def encryption_cost(self, plain: procs.ChatKit, sealed: procs.ChatKit, fake) -> None:
        """Figure 9: worker CPU per v1 JSON turn (one-token reply) with CHATKIT_ENCRYPTION_KEYS
        unset and set, each on a database of its own (a database whose text is encrypted
        refuses to serve without the key), in alternating order from round to round."""
        order = [(plain, {}), (sealed, {"CHATKIT_ENCRYPTION_KEYS": self.encryption_key})]
        if self.round % 2:
            order.reverse()
        per_turn = {}
        for ck, env in order:
            ck.start(workers=2, **env)
            try:
                await self.warm_up(ck, fake)
                per_turn[ck is sealed] = await self.json_turns_cpu(ck, fake)
            finally:
                ck.stop()
        off, on = per_turn[False], per_turn[True]
        self.record("chatkit", "cpu_per_turn_v1_plain_ms", off * 1e3)
        self.record("chatkit", "cpu_per_turn_v1_encrypted_ms", on * 1e3)
        self.record("chatkit", "encryption_overhead_pct", (on - off) / off * 100)

    async def json_turns_cpu(self, ck: procs.ChatKit, fake: procs.Fake) -> float:
        """Worker CPU seconds per v1 JSON turn with a one-token reply, visitors side by side."""
        s = self.sizes
        fake.configure(reply_tokens=1)
        async with load.client() as http:
            ids = list(self.visitors(s.json_visitors))
            sessions = [await load.new_session(http, ck.url, v) for v in ids]
            left, errors = s.json_turns, Counter()

            async def visitor(session: str, v: int) -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    try:
                        await load.v1_turn(http, ck.url, session, v)
                    except Exception as exc:
                        errors[load.failure_kind(exc)] += 1

            before = ck.worker_cpu()
            await asyncio.gather(*(visitor(ses, v) for ses, v in zip(sessions, ids, strict=True)))
            cpu = ck.worker_cpu() - before
        if errors:
            print(f"  [{ck.name}] figure 9: errors {dict(errors)}")
        return cpu / s.json_turns

    async def ttft_alone(self, ck: procs.ChatKit, fake: procs.Fake) -> None:
        """Figure 4: time to first token, one visitor alone, through ChatKit minus direct."""
        s = self.sizes
        fake.configure(reply_tokens=5)
        [v] = self.visitors(1)
        async with load.client() as http:
            session = await load.new_session(http, ck.url, v)
            for _ in range(3):  # warm-up: imports, pools, the first connections
                await load.stream_turn(http, ck.url, session, v)
            runs = [await load.stream_turn(http, ck.url, session, v) for _ in range(s.ttft_turns)]
        ttft = percentile([r.ttft for r in runs if r.ttft is not None], 0.5, 1e3)
        errors = Counter(r.error for r in runs if r.error)
        self.record(ck.name, "ttft_one_ms", ttft, errors=dict(errors))
        if ttft is not None and self.direct.get("ttft_one") is not None:
            self.record(ck.name, "added_ttft_one_ms", ttft - self.direct["ttft_one"])

    async def ttft_open(self, ck: procs.ChatKit, fake: procs.Fake) -> None:
        """Figure 5: open loop, each arrival a new session and a streamed turn."""
        s = self.sizes
        fake.configure(ttft=0.2, itl=0.02, reply_tokens=50)
        count = int(s.open_rate * s.open_seconds)
        first = self.visitors(count).start
        async with load.client() as http:

            async def visit(i: int):
                started = time.perf_counter()
                try:
                    session = await load.new_session(http, ck.url, first + i)
                except Exception as exc:
                    return None, load.Stream(error="session_" + load.failure_kind(exc))
                created = time.perf_counter() - started
                return created, await load.stream_turn(http, ck.url, session, first + i)

            async def arrival(i: int):
                # An overloaded server must not stretch the scenario by minutes: an arrival
                # not served within the bound counts as failed ("overload").
                try:
                    return await asyncio.wait_for(visit(i), s.arrival_timeout)
                except TimeoutError:
                    return None, load.Stream(error="overload")

            results = await load.open_loop(s.open_rate, count, arrival)
        ttfts = [r.ttft * 1e3 for _, r in results if r.ttft is not None and not r.error]
        sessions = [c * 1e3 for c, _ in results if c is not None]
        errors = Counter(r.error for _, r in results if r.error)
        p50, p99 = percentile(ttfts, 0.5), percentile(ttfts, 0.99)
        self.record(ck.name, "ttft_open_p50_ms", p50, errors=dict(errors), streams=count)
        self.record(ck.name, "ttft_open_p99_ms", p99)
        if p50 is not None and self.direct.get("ttft_open_p50") is not None:
            self.record(ck.name, "added_ttft_open_p50_ms", p50 - self.direct["ttft_open_p50"])
            self.record(ck.name, "added_ttft_open_p99_ms", p99 - self.direct["ttft_open_p99"])
        self.record(ck.name, "session_create_p50_ms", percentile(sessions, 0.5))
        self.record(ck.name, "session_create_p99_ms", percentile(sessions, 0.99))
        self.record(ck.name, "open_loop_errors", float(sum(errors.values())))

    async def json_closed(self, name: str, fake: procs.Fake, url: str) -> None:
        """Figure 6: seed /api/chat turns, closed loop, the model answering in 200 ms."""
        fake.configure(ttft=0.2)
        for visitors in self.sizes.closed_visitors:
            result = await self.closed(
                visitors,
                lambda v: load.seed_session(self._http, url, v),
                lambda session, v: load.seed_chat(self._http, url, session, v),
            )
            p50 = percentile(result.latencies, 0.5)
            p99 = percentile(result.latencies, 0.99)
            if p50 is None:
                self.record(name, f"added_json_p50_{visitors}_ms", None, errors=dict(result.errors))
                continue
            self.record(
                name,
                f"added_json_p50_{visitors}_ms",
                p50 * 1e3 - (self.direct.get(f"json_p50_{visitors}") or 0.0),
                errors=dict(result.errors),
            )
            self.record(
                name,
                f"added_json_p99_{visitors}_ms",
                p99 * 1e3 - (self.direct.get(f"json_p99_{visitors}") or 0.0),
            )
            self.record(name, f"turns_per_s_{visitors}", result.turns_per_second)

    async def open_streams(
        self,
        ck: procs.ChatKit,
        fake: procs.Fake,
        count: int,
        *,
        itl: float,
        window: float,
        tag: str,
    ) -> None:
        """Figures 2 and 7: open `count` streams (ramped), wait until each has its first token
        or has failed, then measure a steady window: worker CPU per chunk received, RSS."""
        s = self.sizes
        wait = self.open_wait(count)
        # Replies long enough to outlast that wait and the window.
        tokens = math.ceil((wait + window + 30) / itl)
        fake.configure(ttft=1.0 if itl > 1 else 0.5, itl=itl, reply_tokens=tokens)
        first = self.visitors(count).start
        tally, pending = load.Tally(), asyncio.Semaphore(s.ramp_pending)
        streams = [load.Stream() for _ in range(count)]
        opened = time.perf_counter()
        async with load.client() as http:

            async def arrival(i: int) -> None:
                stream = streams[i]
                async with pending:  # released once the stream's response starts
                    try:
                        session = await load.new_session(http, ck.url, first + i)
                    except Exception as exc:
                        stream.error = "session_" + load.failure_kind(exc)
                        return
                    task = asyncio.create_task(
                        load.stream_turn(
                            http, ck.url, session, first + i, tally=tally, stream=stream
                        )
                    )
                    while not stream.opened and stream.error is None and not task.done():  # noqa: ASYNC110
                        await asyncio.sleep(0.05)  # polling the stream's progress
                await task

            arrivals = asyncio.ensure_future(load.open_loop(s.ramp_rate, count, arrival))
            deadline = time.perf_counter() + wait
            while time.perf_counter() < deadline and not all(  # noqa: ASYNC110
                st.ttft is not None or st.error is not None for st in streams
            ):
                await asyncio.sleep(0.2)  # polling the streams' progress
            ramped = time.perf_counter() - opened
            errors_before = Counter(st.error for st in streams if st.error)
            cpu_before, deltas_before, began = ck.worker_cpu(), tally.deltas, time.perf_counter()
            rss = threads = 0
            while (left := began + window - time.perf_counter()) > 0:
                rss, threads = max(rss, ck.rss()), max(threads, ck.threads())
                await asyncio.sleep(min(1.0, left))  # sampling RSS during the window
            cpu, deltas = ck.worker_cpu() - cpu_before, tally.deltas - deltas_before
            seconds = time.perf_counter() - began
            errors = Counter(st.error for st in streams if st.error)
            streaming = sum(
                1 for st in streams if st.ttft is not None and not st.error and not st.done
            )
            arrivals.cancel()
            await asyncio.gather(arrivals, return_exceptions=True)
        per_chunk = cpu / deltas * 1e6 if deltas else None
        detail = {"streams": count, "open_at_end": streaming, "ramp_s": round(ramped, 1)}
        self.record(
            ck.name,
            f"{tag}_errors",
            float(sum(errors.values())),
            errors=dict(errors),
            before_window=dict(errors_before),
            **detail,
        )
        self.record(ck.name, f"{tag}_rss_mib", rss / 2**20, threads=threads)
        if tag == "paced":
            self.record(
                ck.name,
                "cpu_per_chunk_paced_us",
                per_chunk,
                chunks=deltas,
                window_s=round(seconds, 1),
                chunks_per_s=round(deltas / seconds),
            )

    # --- Node and the statements count ----------------------------------------------------

    async def node(self, fake: procs.Fake) -> None:
        node = procs.Node(fake)
        try:
            await self.json_closed("node", fake, node.url)
        finally:
            node.stop()

    def statements(self, ck: procs.ChatKit) -> None:
        script = ck.tree / "bench" / "statements.py"
        if not script.exists():
            self.record(
                ck.name, "statements_per_turn", None, note="n/a (bench/statements.py missing)"
            )
            return
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=ck.tree,
            env={**os.environ, **ck.env()},
            capture_output=True,
            text=True,
            timeout=600,
        )
        try:
            figures = json.loads(result.stdout[result.stdout.index("{") :])
        except ValueError:
            self.record(
                ck.name, "statements_per_turn", None, note=f"failed: {result.stderr[-300:]}"
            )
            return
        for key in ("statements_per_turn", "checkouts_per_turn"):
            self.record(ck.name, key, figures.get(key))
        self.notes.append({"target": ck.name, "key": "statements", "value": figures})


# --- The table ------------------------------------------------------------------------------

CK = ("chatkit", "baseline")


@dataclasses.dataclass
class Row:
    """One line of the table: a figure's key in `Bench.values`, its goal, which targets."""

    figure: str
    key: str
    what: str
    unit: str = ""
    goal: str = ""
    test: Callable[[float], bool] | None = None  # on the median; None: shown, not judged
    targets: tuple[str, ...] = CK
    beat_node: bool = False  # the goal is Node's own median


def rows_for(sizes: Sizes) -> list[Row]:
    rows = [
        Row(
            "1",
            "cpu_per_chunk_one_us",
            f"worker CPU per relayed chunk, one stream, "
            f"{sizes.long_reply:,}-token reply back to back minus a {sizes.short_reply}-token one",
            "µs",
            "≤ 40 µs",
            lambda v: v <= 40,
        ),
        Row(
            "2",
            "cpu_per_chunk_paced_us",
            f"worker CPU per relayed chunk, {sizes.paced_streams:,} streams at 1 token/s, 1 worker",
            "µs",
            "≤ 100 µs",
            lambda v: v <= 100,
        ),
        Row(
            "3",
            "cpu_per_turn_health_ms",
            "for reference: worker CPU per GET /health (2.0 ms in the issue)",
            "ms",
        ),
        Row(
            "3",
            "cpu_per_turn_v1_ms",
            "worker CPU per JSON turn, v1, one-token reply",
            "ms",
            "≤ 5 ms",
            lambda v: v <= 5,
        ),
        Row(
            "3",
            "cpu_per_turn_seed_ms",
            "worker CPU per JSON turn, seed /api/chat",
            "ms",
            "≤ 5 ms",
            lambda v: v <= 5,
        ),
        Row("3", "cpu_per_turn_v1_limits_off_ms", "same, v1, limits off", "ms", "(their cost)"),
        Row("3", "cpu_per_turn_seed_limits_off_ms", "same, seed, limits off", "ms", "(their cost)"),
        Row(
            "4",
            "added_ttft_one_ms",
            "added time to first token, one visitor (median)",
            "ms",
            "≤ 3 ms",
            lambda v: v <= 3,
        ),
        Row(
            "5",
            "added_ttft_open_p50_ms",
            f"added TTFT, open loop {sizes.open_rate:g} new "
            f"streams/s for {sizes.open_seconds:g} s, 2 workers, p50",
            "ms",
            "≤ 10 ms",
            lambda v: v <= 10,
        ),
        Row("5", "added_ttft_open_p99_ms", "same, p99", "ms", "≤ 50 ms", lambda v: v <= 50),
        Row("5", "session_create_p50_ms", "same, session creation, p50", "ms"),
        Row("5", "session_create_p99_ms", "same, session creation, p99", "ms"),
        Row("5", "open_loop_errors", "same, failed arrivals", "", "0", lambda v: v == 0),
    ]
    for n in sizes.closed_visitors:
        rows += [
            Row(
                "6",
                f"added_json_p50_{n}_ms",
                f"added latency per JSON turn, {n} concurrent, "
                "p50 (ChatKit: 2 workers, Node: 1 process)",
                "ms",
                "stretch: ≤ Node",
                targets=(*CK, "node"),
                beat_node=True,
            ),
            Row(
                "6",
                f"added_json_p99_{n}_ms",
                f"same, {n} concurrent, p99",
                "ms",
                "stretch: ≤ Node",
                targets=(*CK, "node"),
                beat_node=True,
            ),
            Row(
                "6",
                f"turns_per_s_{n}",
                f"turns per second, {n} concurrent",
                "/s",
                targets=(*CK, "node"),
            ),
        ]
    return [
        *rows,
        Row(
            "7",
            "paced_errors",
            f"open streams, 1 worker, {sizes.paced_streams:,} at a token a second: failed",
            "",
            "0",
            lambda v: v == 0,
        ),
        Row(
            "7",
            "paced_rss_mib",
            "same: total RSS of ChatKit's processes",
            "MiB",
            "≤ 2048 MiB",
            lambda v: v <= 2048,
        ),
        Row(
            "7",
            "idle_errors",
            f"open streams, 2 workers, {sizes.idle_streams:,} mostly idle: failed",
            "",
            "0",
            lambda v: v == 0,
        ),
        Row(
            "7",
            "idle_rss_mib",
            "same: total RSS of ChatKit's processes",
            "MiB",
            "≤ 2048 MiB",
            lambda v: v <= 2048,
        ),
        Row(
            "9",
            "cpu_per_turn_v1_plain_ms",
            "worker CPU per JSON turn, v1, CHATKIT_ENCRYPTION_KEYS unset",
            "ms",
            targets=("chatkit",),
        ),
        Row(
            "9",
            "cpu_per_turn_v1_encrypted_ms",
            "worker CPU per JSON turn, v1, CHATKIT_ENCRYPTION_KEYS set",
            "ms",
            targets=("chatkit",),
        ),
        Row(
            "9",
            "encryption_overhead_pct",
            "encryption at rest: added CPU per JSON turn (interleaved with unset)",
            "%",
            "< 5 %",
            lambda v: v < 5,
            ("chatkit",),
        ),
        Row(
            "8",
            "statements_per_turn",
            "database statements per turn",
            "",
            "≤ 6",
            lambda v: v <= 6,
            ("chatkit",),
        ),
        Row(
            "8",
            "checkouts_per_turn",
            "pool check-outs per turn",
            "",
            "≤ 2",
            lambda v: v <= 2,
            ("chatkit",),
        ),
    ]


def cell(values: list[float] | None, unit: str) -> str:
    """The median of the rounds, with their range: "12.3 ms (11.0 to 14.1)"."""
    if not values:
        return ""

    def fmt(v: float) -> str:
        return f"{v:.0f}" if max(abs(x) for x in values) >= 100 else f"{v:.3g}"

    text = fmt(statistics.median(values)) + (f" {unit}" if unit else "")
    if len(values) > 1:
        text += f" ({fmt(min(values))} to {fmt(max(values))})"
    return text


def table(bench: Bench, *, judged: bool, baseline_name: str) -> list[list[str]]:
    rows = [["#", "figure", "goal", "ChatKit", baseline_name, "Node", "met"]]
    for row in rows_for(bench.sizes):
        if row.figure not in bench.only:
            continue
        cells = {t: bench.values.get(t, {}).get(row.key) for t in ("chatkit", "baseline", "node")}
        if row.figure == "8" and not cells["chatkit"]:
            notes = [n.get("note") for n in bench.notes if n["key"] == row.key and n.get("note")]
            rows.append([row.figure, row.what, row.goal, notes[0] if notes else "n/a", "", "", ""])
            continue
        if not any(cells[t] for t in row.targets):
            continue
        met, ours = "", cells["chatkit"]
        if not judged:
            met = "—" if row.test or row.beat_node else ""
        elif ours and row.beat_node and cells["node"]:
            met = "yes" if statistics.median(ours) <= statistics.median(cells["node"]) else "no"
        elif ours and row.test:
            met = "yes" if row.test(statistics.median(ours)) else "no"
        shown = [cell(cells[t], row.unit) if t in row.targets else "" for t in cells]
        rows.append([row.figure, row.what, row.goal, *shown, met])
    return rows


def print_table(rows: list[list[str]], *, markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(rows[0]) + " |")
        print("|" + "---|" * len(rows[0]))
        for row in rows[1:]:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[1] = min(widths[1], 72)
    for row in rows:
        what = row[1] if len(row[1]) <= widths[1] else row[1][: widths[1] - 1] + "…"
        row = [row[0], what, *row[2:]]
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())


# --- The run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="the smoke run: tiny counts, one round, not judged"
    )
    parser.add_argument("--only", help="figures to measure, e.g. 1,4 (default: all of 1-9)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, 1 with --quick)")
    parser.add_argument(
        "--baseline-commit",
        default=BASELINE_COMMIT,
        help="the commit to compare with (default %(default)s)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    parser.add_argument("--no-node", action="store_true", help="skip the Node/Express peer")
    parser.add_argument(
        "--json",
        default=str(procs.ROOT / "bench" / "results" / "latest.json"),
        help="where to write the figures (default %(default)s)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--database-prefix",
        default=DATABASE_PREFIX,
        help="PostgreSQL databases: this, this_baseline, this_encrypted (default %(default)s)",
    )
    parser.add_argument(
        "--redis-dbs",
        default=REDIS_DBS,
        help="Redis dbs flushed and used by this tree and the baseline (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if "bench" not in args.database_prefix:
        parser.error("--database-prefix must contain 'bench' (those databases are dropped)")
    try:
        args.redis_dbs = [int(db) for db in args.redis_dbs.split(",")]
    except ValueError:
        parser.error("--redis-dbs takes two numbers, e.g. 5,6")
    if len(args.redis_dbs) != 2:
        parser.error("--redis-dbs takes two numbers, e.g. 5,6")
    if args.only and not set(args.only.split(",")) <= set(FIGURES):
        parser.error(f"--only takes figures among {','.join(FIGURES)}")
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


async def measure(
    bench: Bench,
    fake: procs.Fake,
    chatkits: list[procs.ChatKit],
    node: bool,
    encrypted: procs.ChatKit | None = None,
) -> None:
    for round_ in range(bench.args.rounds):
        bench.round = round_
        print(f"\n=== round {bench.round + 1} of {bench.args.rounds}", flush=True)
        bench.direct = {}
        if bench.wants("4", "5", "6"):
            print("- direct to the fake model", flush=True)
            await bench.direct_to_fake(fake)
        for ck in chatkits:
            print(f"- {ck.name} ({ck.tree})", flush=True)
            await bench.chatkit(ck, fake)
        if node and bench.wants("6"):
            print("- the Node/Express peer", flush=True)
            await bench.node(fake)
        if encrypted is not None:
            print("- chatkit, encryption at rest unset and set", flush=True)
            await bench.encryption_cost(chatkits[0], encrypted, fake)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also in a pipe
    procs.raise_fd_limit()
    procs.install_signal_handlers()
    procs.clear_logs()
    bench = Bench(args)
    started = time.monotonic()
    baseline: procs.Baseline | None = None
    chatkits: list[procs.ChatKit] = []
    chatkits_to_drop: list[procs.ChatKit] = []  # beside those measured
    fake = None
    try:
        fake = procs.Fake()
        prefix, (redis_db, baseline_redis_db) = args.database_prefix, args.redis_dbs
        trees = [("chatkit", procs.ROOT, prefix, redis_db)]
        if not args.no_baseline:
            try:
                baseline = procs.Baseline(args.baseline_commit)
            except subprocess.CalledProcessError as exc:  # e.g. a shallow clone without it
                print(f"no baseline: cannot check out {args.baseline_commit}: {exc.stderr!r}")
            else:
                trees.append(("baseline", baseline.path, f"{prefix}_baseline", baseline_redis_db))
        for name, tree, database, redis_db in trees:
            ck = procs.ChatKit(name, tree, database=database, redis_db=redis_db, fake=fake)
            chatkits.append(ck)
            ck.create_database()
            if ck.pool_settings:
                print(f"{name}: upstream pool setting(s) {', '.join(ck.pool_settings)} = 20000")
            else:
                print(f"{name}: no upstream pool setting in its .env.example: the SDK's default")
        encrypted = None
        if bench.wants("9"):
            # Its own database: once its text is encrypted, it refuses to serve without the key.
            encrypted = procs.ChatKit(
                "chatkit_encrypted",
                procs.ROOT,
                database=f"{prefix}_encrypted",
                redis_db=redis_db,
                fake=fake,
            )
            chatkits_to_drop.append(encrypted)
            encrypted.create_database()
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(measure(bench, fake, chatkits, node=not args.no_node, encrypted=encrypted))
        if bench.wants("8"):
            bench.statements(chatkits[0])
    finally:
        procs.stop_all()
        if baseline is not None:
            baseline.remove()
        for ck in chatkits + chatkits_to_drop:
            try:
                ck.drop_database()
            except Exception as exc:  # say so, and still drop the others
                print(f"could not drop {ck.database}: {exc!r}", file=sys.stderr)
    baseline_name = f"baseline {args.baseline_commit}" if baseline else "baseline"
    rows = table(bench, judged=not args.quick, baseline_name=baseline_name)
    minutes = (time.monotonic() - started) / 60
    kind = "Smoke run (not judged)" if args.quick else "Figures"
    print(f"\n{kind}: the median of {args.rounds} interleaved round(s) (min to max),")
    print(f"{minutes:.1f} min; the processes' logs in {procs.LOGS}\n")
    print_table(rows, markdown=args.markdown)
    output = Path(args.json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "commit": subprocess.run(
                    ["git", "rev-parse", "--short", "HEAD"],
                    cwd=procs.ROOT,
                    capture_output=True,
                    text=True,
                ).stdout.strip(),
                "baseline_commit": args.baseline_commit if baseline else None,
                "quick": args.quick,
                "rounds": args.rounds,
                "sizes": dataclasses.asdict(bench.sizes),
                "machine": procs.machine(),
                "upstream_pool_settings": {ck.name: ck.pool_settings for ck in chatkits},
                "figures": bench.values,
                "table": rows,
                "notes": bench.notes,
            },
            indent=1,
        )
    )
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
