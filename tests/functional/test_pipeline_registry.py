"""The per-user pipeline registry: what running engines leave for `say`, `skill serve` and the CLI."""
import os
import stat
import subprocess
import sys
import threading
import time

from infrastructure.local.registry import PipelineRegistry, RegisteredPipeline


def entry(name, project, pid, url="http://127.0.0.1:1", token="t"):
    return RegisteredPipeline(name=name, project=project, url=url, pid=pid, token=token, started_at=time.time())


def test_entries_survive_a_new_reader_and_dead_engines_are_dropped(tmp_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        registry = PipelineRegistry(tmp_path / "home")
        registry.register(entry("wine", "/p/wine", alive.pid))
        registry.register(entry("fraud", "/p/fraud", dead.pid))
        assert [e.name for e in PipelineRegistry(tmp_path / "home").entries()] == ["wine"]  # fraud's PID is gone
        assert "fraud" not in registry.path.read_text()  # and it is dropped from the file too
        registry.register(entry("wine", "/p/wine", alive.pid, url="http://127.0.0.1:2"))
        (only,) = registry.entries()
        assert only.url == "http://127.0.0.1:2"  # one entry per project, the newest
        assert stat.S_IMODE(os.stat(registry.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(registry.home).st_mode) == 0o700
        registry.unregister("/p/wine", pid=alive.pid + 1)  # not its engine: nothing happens
        assert registry.find("wine")
        registry.unregister("/p/wine", pid=alive.pid)
        assert registry.entries() == []
    finally:
        alive.kill()
        alive.wait()


def test_an_engine_that_does_not_answer_as_itself_is_dropped_by_a_health_check(tmp_path):
    registry = PipelineRegistry(tmp_path)
    registry.register(entry("wine", "/p/wine", os.getpid(), url="http://127.0.0.1:9"))  # nothing listens
    assert registry.entries() != []
    assert registry.entries(check_health=True) == []
    assert registry.entries() == []


def test_concurrent_registrations_lose_none_and_a_broken_file_starts_afresh(tmp_path):
    registry = PipelineRegistry(tmp_path)
    threads = [threading.Thread(target=registry.register, args=(entry(f"p{i}", f"/p/{i}", os.getpid()),))
               for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.name for e in registry.entries()) == sorted(f"p{i}" for i in range(12))
    registry.path.write_text("{not json")
    assert registry.entries() == []
    registry.register(entry("wine", "/p/wine", os.getpid()))
    assert [e.name for e in registry.entries()] == ["wine"]
