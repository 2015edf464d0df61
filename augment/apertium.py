"""Apertium's pipeline for one language pair, run so that a sentence's translation depends
on the sentence alone, at the speed of one `apertium` call over the whole batch.

Sentences go through the pair's mode (its chain of programs) separated by null characters,
every program flushing at each null (`-z`). One state crosses that boundary: a bug of
Apertium's HMM tagger (`tagger_utils::find_similar_ambiguity_class`, up to 3.9) assigns
the ambiguity class it finds for a word of a class the model never saw to the model's open
class, by reference; every later unknown word of the process is then tagged from that
smaller class. Null flushes reset the tagger's other state (its previous tags), not this.
So the tagger runs twice, both cheap next to the rest of the chain: once over the batch
with its error messages in its output, which names the sentences that change the state
(about 1.5% of movie-review sentences), then over runs of sentences that each end at such
a sentence, one process per run, so that every sentence starts on the model as it was
loaded. Taggers that keep no such state (the perceptron tagger of eng-cat) print nothing
and run once. The rest of the chain (transfer, generation: most of the work) runs as one
pipe beside the taggers, fed each run as it is tagged.

The batch is cut into one contiguous shard per core, each through its own chain, when
shards of at least `_MIN_SHARD` sentences are left: every shard pays a start of every
program (its dictionaries loaded).
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from assay.engine import cpu_budget
from assay.errors import ResourceError

# What the HMM tagger prints (with -d) when it meets an unseen ambiguity class, the event
# that changes its open class for the rest of the process.
NEW_CLASS = "A new ambiguity class was found"
_MIN_SHARD = 1000  # sentences: smaller shards cost more in program starts than they save


def mode_file(src: str, tgt: str) -> Path:
    """The installed mode file of the pair `src-tgt`."""
    exe = shutil.which("apertium")
    if exe is None:
        raise ResourceError("Apertium is not installed (apt-get install apertium)")
    return Path(exe).resolve().parents[1] / "share" / "apertium" / "modes" / f"{src}-{tgt}.mode"


def _flushing(command: str) -> list[str]:
    """A program of the mode as an argument list, with null flushing turned on."""
    argv = shlex.split(command)
    return [argv[0], "-z", *argv[1:]]


class ApertiumPipeline:
    """The mode of one pair split around its tagger: analysis, tagger, the rest."""

    def __init__(self, src: str, tgt: str) -> None:
        mode = mode_file(src, tgt)
        if not mode.is_file():
            raise ResourceError(f"Apertium's mode file for {src}-{tgt} is missing: {mode}")
        # $1: the generator's flag (-n: no marks on unknown words); $2: the tagger's extra flag
        text = mode.read_text().strip().replace("$1", "-n").replace("$2", "")
        parts = [part.strip() for part in text.split(" | ")]
        at = next((i for i, p in enumerate(parts) if p.startswith("apertium-tagger")), None)
        if at is None:
            raise ResourceError(f"Apertium's {src}-{tgt} pipeline has no tagger: {mode}")
        self.analysis = [_flushing(p) for p in parts[:at]]
        self.tagger = _flushing(parts[at])
        self.probe = [*self.tagger[:2], "-d", *self.tagger[2:]]  # -d: say what it meets
        self.rest = [_flushing(p) for p in parts[at + 1 :]]

    def translate(self, segments: list[str]) -> list[str]:
        """Each segment (stream-format text, escaped) through the whole chain."""
        if not segments:
            return []
        shards = max(1, min(cpu_budget(), len(segments) // _MIN_SHARD))
        size = -(-len(segments) // shards)
        parts = [segments[i : i + size] for i in range(0, len(segments), size)]
        if len(parts) <= 1:
            return self._shard(segments)
        with ThreadPoolExecutor(len(parts)) as pool:
            return [out for part in pool.map(self._shard, parts) for out in part]

    def _shard(self, segments: list[str]) -> list[str]:
        """`segments` analysed and probed, then the taggers' runs fed to the rest of the
        chain as they come: the rest, most of the work, runs beside the taggers."""
        analysed = _run(self.analysis, segments)
        with _Chain(self.rest) as chain:
            for run in self.runs(analysed):
                chain.write(_run([self.tagger], run))
        return chain.output(len(segments))

    def runs(self, analysed: list[str]) -> list[list[str]]:
        """`analysed` cut after each sentence that changes the tagger's state: each run
        tagged by a tagger fresh from its model file tags every sentence as if alone."""
        probe = _run([self.probe], analysed, merge_errors=True)
        ends = [i + 1 for i, out in enumerate(probe) if NEW_CLASS in out]
        bounds = zip([0, *ends], [*ends, len(analysed)], strict=True)
        return [analysed[a:b] for a, b in bounds if b > a]


def _run(commands: list[list[str]], segments: list[str], merge_errors: bool = False) -> list[str]:
    """`segments` through a chain of null-flushing programs: one output per input."""
    if not segments:
        return []
    with _Chain(commands, merge_errors=merge_errors) as chain:
        chain.write(segments)
    return chain.output(len(segments))


class _Chain:
    """Programs connected by pipes, written to and read from on threads of their own."""

    def __init__(self, commands: list[list[str]], merge_errors: bool = False) -> None:
        self.commands = commands
        self.merge_errors = merge_errors
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []

    def __enter__(self) -> _Chain:
        stdin: int | object = subprocess.PIPE
        try:
            for argv in self.commands:
                proc = subprocess.Popen(
                    argv,
                    stdin=stdin,  # type: ignore[arg-type]
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT if self.merge_errors else subprocess.PIPE,
                )
                if self.procs:
                    assert self.procs[-1].stdout is not None
                    self.procs[-1].stdout.close()  # the next program holds it now
                self.procs.append(proc)
                stdin = proc.stdout
        except OSError as exc:
            self._kill()
            raise ResourceError(f"Apertium could not start {argv[0]}: {exc}") from None
        self.readers = [
            threading.Thread(target=self._drain, args=(p.stderr, self.stderr), daemon=True)
            for p in self.procs
            if p.stderr is not None
        ]
        last = self.procs[-1].stdout
        self.readers.append(threading.Thread(target=self._drain, args=(last, self.stdout)))
        for reader in self.readers:
            reader.start()
        return self

    @staticmethod
    def _drain(pipe: object, into: list[bytes]) -> None:
        into.append(pipe.read())  # type: ignore[attr-defined]

    def write(self, segments: list[str]) -> None:
        first = self.procs[0].stdin
        assert first is not None
        with contextlib.suppress(BrokenPipeError):  # the chain failed; its exit codes say how
            first.write("".join(f"{s}\0" for s in segments).encode("utf-8"))

    def _kill(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self._kill()
        first = self.procs[0].stdin
        assert first is not None
        with contextlib.suppress(BrokenPipeError):
            first.close()
        for reader in self.readers:
            reader.join()
        self.codes = [proc.wait() for proc in self.procs]

    def output(self, n: int) -> list[str]:
        out = b"".join(self.stdout).decode("utf-8", errors="replace").split("\0")
        if any(self.codes) or len(out) < n or any(out[n:]):
            failed = next(
                (argv[0] for argv, c in zip(self.commands, self.codes, strict=True) if c), ""
            )
            errors = b"".join(self.stderr).decode("utf-8", errors="replace").strip()
            raise ResourceError(
                f"apertium failed ({failed or 'output does not split back'}, exit "
                f"{max(self.codes, key=abs)}): {errors[:200]}"
            )
        return out[:n]
