"""The first utterance's audio, synthesised from the moment the handoff is accepted.

The visitor clicks "Switch to voice"; the accept route asks `VoiceSessions.prepare` to
compose the first utterance (`HandoffService.prepare_first_utterance`) and synthesise it
here, sentence by sentence, while the browser is still asking for the microphone, gathering
ICE and posting its offer. When the leg opens, its pipeline plays these sentences (waiting
for any still being synthesised) instead of starting synthesis then.

The audio is used only for the exact text the redeem recorded in HandoffCompleted: if the
conversation moved between acceptance and redeem, the handoff service composed again, the
texts differ, and the leg synthesises the new text as before — what is spoken is always what
is recorded, and AgentSpoke's `first_audio_at` is still taken when the first frame leaves.

Per process, bounded (`max_entries`; the oldest acceptance is dropped first) and expiring with
the handoff token: each entry's expiry is scheduled when it starts, so an entry nobody redeems
is abandoned and dropped then, on a quiet server too. A redeem on another replica finds
nothing here and synthesises fresh.
Synthesis runs at most `LOOKAHEAD` sentences ahead of the leg (before the leg opens: the
first two), and a dropped or expired entry stops after the sentence being synthesised, so
an abandoned click costs at most that much work on the one TTS worker that live legs use,
and the CPU the browser and server need to set the call up is not spent on sentences
nobody may hear.

The text and audio restate the conversation, so they go with an erasure of its subject:
`follow_erasures(handoffs)` subscribes to the handoff service's prepared utterances, which
report every conversation whose entries they drop for a SubjectErased (appended here: at
once; by another process: within one handoff expiry scan). The entry's synthesis stops and
the entry leaves the cache; a preparation that read the context before the erasure and
starts after it is refused (`start(..., since=erasures)`). What a later leg plays is what
its redeem composed from the erased context, never the erased text (`take` compares them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

from threadline.channels.voice.ports import TextToSpeech
from threadline.handoff.prepared import ErasureLog, PreparedUtterances

log = logging.getLogger(__name__)
MAX_ENTRIES = 16
LOOKAHEAD = 2  # sentences synthesised ahead of what the leg has played from
# Handoffs whose leg already opened, remembered so a late preparation is not synthesised.
_TAKEN_MEMORY = 256
Key = tuple[str, str]  # (conversation id, handoff id)


class PreparedAudio:
    """Sentences of one text as they are synthesised; `stream()` yields them in order and
    waits for the rest."""

    def __init__(
        self, text: str, sample_rate: int, expires_at: datetime, lookahead: int = LOOKAHEAD
    ) -> None:
        self.text = text
        self.sample_rate = sample_rate
        self.expires_at = expires_at
        self.lookahead = lookahead
        self.sentences: list[tuple[str, bytes]] = []
        self.done = False
        self.error: BaseException | None = None
        self.abandoned = False
        self._taken = 0  # sentences the leg has pulled
        self._changed = asyncio.Event()
        self._wanted = asyncio.Event()

    def abandon(self) -> None:
        self.abandoned = True
        self._wanted.set()

    async def room(self) -> None:
        """Waits until the leg is less than `lookahead` sentences behind (or gone)."""
        while not self.abandoned and len(self.sentences) - self._taken >= self.lookahead:
            self._wanted.clear()
            await self._wanted.wait()

    def add(self, sentence: str, pcm: bytes) -> None:
        self.sentences.append((sentence, pcm))
        self._changed.set()

    def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.done = True
        self._changed.set()

    async def stream(self) -> AsyncGenerator[tuple[str, bytes], None]:
        """The sentences in order. A consumer that stops early (a barge-in, a hang-up)
        abandons the rest: it is not synthesised for nobody."""
        i = 0
        try:
            while True:
                if i < len(self.sentences):
                    self._taken = i + 1
                    self._wanted.set()
                    yield self.sentences[i]
                    i += 1
                    continue
                if self.done:
                    if self.error is not None:
                        raise self.error
                    return
                self._changed.clear()  # no await since the checks above: nothing is missed
                await self._changed.wait()
        finally:
            if not self.done:
                self.abandon()


class FirstAudioCache:
    def __init__(
        self, tts: TextToSpeech, sample_rate: int, *, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.tts = tts
        self.sample_rate = sample_rate
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, PreparedAudio] = OrderedDict()
        self._taken: OrderedDict[Key, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[PreparedAudio] = set()  # taken or not, until synthesis ends
        # Each entry's expiry, scheduled at start: an unredeemed entry (its text and audio
        # restate the conversation) is dropped then even if nothing else ever happens.
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop entries live on
        # Erasures are reported from other threads: counted here at once, dropped on the loop.
        self._erased = ErasureLog()
        self._unfollow: Callable[[], None] = lambda: None  # set by `follow_erasures`

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def erasures(self) -> int:
        """Erasures seen so far: read before the text is composed, passed to `start`."""
        return self._erased.count

    def start(
        self, key: Key, text: str, expires_at: datetime, *, since: int | None = None
    ) -> PreparedAudio | None:
        """Starts synthesising `text` for the handoff `key` in the background. None (and
        nothing started) if that handoff's leg has already opened, or if its conversation
        had an erasure after `since` (the `erasures` count read before `text` was composed)."""
        if key in self._taken or not text.strip():
            return None
        if self._erased.after(key[0], since):
            return None
        self._loop = asyncio.get_running_loop()
        self._purge()
        self._drop(key)
        entry = PreparedAudio(text, self.sample_rate, expires_at)
        self._entries[key] = entry
        delay = max(0.0, (expires_at - datetime.now(UTC)).total_seconds())
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._expire, key, entry)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
        self._running.add(entry)
        task = asyncio.ensure_future(self._synthesize(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return entry

    def take(self, key: Key, text: str) -> PreparedAudio | None:
        """The audio prepared for this handoff if it is of exactly `text` (what the redeem
        recorded) and still valid; the entry leaves the cache either way."""
        self._taken[key] = None
        while len(self._taken) > _TAKEN_MEMORY:
            self._taken.popitem(last=False)
        entry = self._pop(key)
        if entry is None:
            return None
        if entry.text != text or entry.expires_at <= datetime.now(UTC) or entry.error:
            entry.abandon()
            return None
        return entry

    def follow_erasures(self, handoffs: object) -> None:
        """Drops a conversation's entries whenever `handoffs` (the handoff service) drops its
        prepared utterances for an erasure. Nothing to follow on a service without them."""
        prepared = getattr(handoffs, "prepared", None)
        if isinstance(prepared, PreparedUtterances):
            self._unfollow = prepared.on_drop(self.erased)

    def erased(self, conversation_id: str) -> None:
        """A subject of `conversation_id` was erased; callable from any thread."""
        self._erased.record(conversation_id)
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nothing was ever started on a loop: nothing to drop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.drop_conversation(conversation_id)
        else:
            loop.call_soon_threadsafe(self.drop_conversation, conversation_id)

    def drop_conversation(self, conversation_id: str) -> int:
        """Drops (and stops synthesising) every entry of `conversation_id`; on the loop."""
        keys = [k for k in self._entries if k[0] == conversation_id]
        for key in keys:
            self._drop(key)
        return len(keys)

    def _purge(self) -> None:
        now = datetime.now(UTC)
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            self._drop(key)

    def _pop(self, key: Key) -> PreparedAudio | None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()  # it holds the entry: the audio must not outlive the take
        return self._entries.pop(key, None)

    def _drop(self, key: Key) -> None:
        entry = self._pop(key)
        if entry is not None:
            entry.abandon()

    def _expire(self, key: Key, entry: PreparedAudio) -> None:
        if self._entries.get(key) is entry:
            self._drop(key)

    async def _synthesize(self, entry: PreparedAudio) -> None:
        stream: Any = getattr(self.tts, "synthesize_sentences", None)
        try:
            if stream is None:
                entry.add(entry.text, await self.tts.synthesize(entry.text, entry.sample_rate))
            else:
                async with contextlib.aclosing(stream(entry.text, entry.sample_rate)) as parts:
                    async for sentence, pcm in parts:
                        entry.add(sentence, pcm)
                        await entry.room()  # the next one is synthesised when wanted
                        if entry.abandoned:
                            break
        # The leg synthesises the whole text (failed before its take) or, if it already plays
        # this entry, the sentences not reached (`VoicePipeline._prepared_then_live`).
        except Exception as exc:
            log.warning("first utterance pre-synthesis failed: %s", type(exc).__name__)
            entry.finish(exc)
            return
        finally:
            self._running.discard(entry)
        entry.finish()

    async def aclose(self) -> None:
        """Stops preparing (server shutdown): running sentences finish, nothing new starts."""
        self._unfollow()  # the handoff service may outlive this cache (tests, a restart)
        for entry in [*self._entries.values(), *self._running]:
            entry.abandon()
        self._entries.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
