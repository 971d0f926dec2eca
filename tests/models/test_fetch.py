"""Downloads against a real local HTTP server: resume, verification, atomicity, offline."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.catalog import CatalogEntry, find_entry
from models.errors import ModelDownloadError
from models.fetch import download_file, source_url
from models.store import ModelStore
from tests.models.hub_server import HubState, running_hub

FILE_PATH = "/openbmb/Tiny-GGUF/resolve/main/tiny.gguf"


@pytest.fixture
def hub(model_files: dict[str, Path]) -> Iterator[tuple[str, HubState, bytes]]:
    payload = model_files["q4_k_m"].read_bytes()
    with running_hub() as (base, state):
        state.files[FILE_PATH] = payload
        yield base, state, payload


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verifies_and_reports_progress(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, _, payload = hub
    seen: list[tuple[int, int | None]] = []
    target = download_file(
        base + FILE_PATH,
        tmp_path / "tiny.gguf",
        expected_size=len(payload),
        sha256=sha256(payload),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert target.read_bytes() == payload
    assert not (tmp_path / "tiny.gguf.part").exists()
    assert seen[-1] == (len(payload), len(payload))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_dropped_connection_is_resumed_with_a_range_request(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, state, payload = hub
    state.drop_after[FILE_PATH] = 300_000
    target = download_file(base + FILE_PATH, tmp_path / "tiny.gguf", sha256=sha256(payload))
    assert target.read_bytes() == payload
    assert state.requests == [(FILE_PATH, None), (FILE_PATH, "bytes=300000-")]


def test_interrupted_pull_leaves_no_valid_looking_file_and_resumes_later(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, state, payload = hub
    state.drop_after[FILE_PATH] = 200_000
    with pytest.raises(ModelDownloadError, match="run the same pull again to resume"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf", attempts=1)
    assert not (tmp_path / "tiny.gguf").exists()
    assert (tmp_path / "tiny.gguf.part").stat().st_size == 200_000

    download_file(base + FILE_PATH, tmp_path / "tiny.gguf", sha256=sha256(payload))
    assert (tmp_path / "tiny.gguf").read_bytes() == payload
    assert state.requests[-1] == (FILE_PATH, "bytes=200000-")


def test_server_without_range_support_restarts_cleanly(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, state, payload = hub
    state.honour_ranges = False
    state.drop_after[FILE_PATH] = 300_000
    target = download_file(base + FILE_PATH, tmp_path / "tiny.gguf", sha256=sha256(payload))
    assert target.read_bytes() == payload  # not 300 kB of old bytes plus the whole file


def test_cancelled_download_keeps_the_part_for_later(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    payload = model_files["f32"].read_bytes()  # several 1 MiB chunks
    cancel = threading.Event()
    with running_hub() as (base, state):
        state.files[FILE_PATH] = payload
        with pytest.raises(ModelDownloadError, match="cancelled"):
            download_file(base + FILE_PATH, tmp_path / "tiny.gguf", cancel=cancel,
                          progress=lambda done, total: cancel.set() if done else None)
        assert not (tmp_path / "tiny.gguf").exists()
        kept = (tmp_path / "tiny.gguf.part").stat().st_size
        assert 0 < kept < len(payload)
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf", sha256=sha256(payload))
        assert state.requests[-1] == (FILE_PATH, f"bytes={kept}-")
    assert (tmp_path / "tiny.gguf").read_bytes() == payload


def test_checksum_mismatch_removes_the_download(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, _, _ = hub
    with pytest.raises(ModelDownloadError, match="sha256 .* does not match"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_without_checksum_a_truncated_gguf_is_caught_by_its_header(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, state, payload = hub
    state.files[FILE_PATH] = payload[:-4096]  # the server itself serves a short file
    with pytest.raises(ModelDownloadError, match="truncated GGUF"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf")
    assert list(tmp_path.iterdir()) == []


def test_missing_file_on_the_hub(hub: tuple[str, HubState, bytes], tmp_path: Path) -> None:
    base, _, _ = hub
    with pytest.raises(ModelDownloadError, match="the file is not there"):
        download_file(base + "/nope/resolve/main/x.gguf", tmp_path / "x.gguf")


def test_offline_gives_one_clear_message(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ModelDownloadError, match="are you offline.*models add PATH"):
        download_file(f"http://127.0.0.1:{port}/a.gguf", tmp_path / "a.gguf", attempts=2)


def test_hub_urls_honour_endpoint_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = find_entry("minicpm3-4b")
    assert entry is not None
    assert source_url(entry, "hf") == (
        "https://huggingface.co/openbmb/MiniCPM3-4B-GGUF/resolve/"
        "816dc79b35f92827e0d2d87aacea3567e49661a8/minicpm3-4b-q4_k_m.gguf"
    )
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.local/")
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://ms.local")
    assert source_url(entry, "hf").startswith("http://mirror.local/openbmb/MiniCPM3-4B-GGUF/")
    assert source_url(entry, "modelscope") == (
        "http://ms.local/models/OpenBMB/MiniCPM3-4B-GGUF/resolve/master/minicpm3-4b-q4_k_m.gguf"
    )


def test_entry_without_modelscope_file_says_what_to_do() -> None:
    entry = find_entry("minicpm-2b-dpo")
    assert entry is not None
    with pytest.raises(ModelDownloadError, match="--source hf"):
        source_url(entry, "modelscope")


@pytest.mark.parametrize("source", ["hf", "modelscope"])
def test_store_pull_through_stand_in_hubs(
    source: str,
    unpinned_minicpm3: CatalogEntry,
    model_files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = model_files["q4_k_m"].read_bytes()
    with running_hub() as (base, state):
        state.files["/openbmb/MiniCPM3-4B-GGUF/resolve/main/minicpm3-4b-q4_k_m.gguf"] = payload
        state.files[
            "/models/OpenBMB/MiniCPM3-4B-GGUF/resolve/master/minicpm3-4b-q4_k_m.gguf"
        ] = payload
        monkeypatch.setenv("HF_ENDPOINT", base)
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", base)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        model = ModelStore(tmp_path).pull("minicpm3-4b", source=source)  # type: ignore[arg-type]
        again = ModelStore(tmp_path).pull("minicpm3-4b", source=source)  # type: ignore[arg-type]
    assert model.path == tmp_path / "minicpm3-4b-q4_k_m.gguf" == again.path
    assert model.is_minicpm and model.entry is not None and model.name == "minicpm3-4b"
    assert len(state.requests) == 1  # the second pull found it on disk


def test_hf_offline_flag_is_respected(tmp_path: Path) -> None:
    with pytest.raises(ModelDownloadError, match="HF_HUB_OFFLINE is set"):
        ModelStore(tmp_path).pull("minicpm3-4b", source="hf")


def test_hub_token_is_not_sent_on_to_another_host(
    hub: tuple[str, HubState, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub answers with a redirect to its CDN; the token is for the hub alone."""
    base, state, payload = hub
    cdn = base.replace("127.0.0.1", "localhost") + "/cdn/tiny.gguf"
    state.files["/cdn/tiny.gguf"] = payload
    state.redirects["/openbmb/Gated/resolve/main/tiny.gguf"] = cdn
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    target = download_file(base + "/openbmb/Gated/resolve/main/tiny.gguf", tmp_path / "t.gguf")
    assert target.read_bytes() == payload
    assert state.authorized == ["/openbmb/Gated/resolve/main/tiny.gguf"]


def test_part_longer_than_the_file_on_the_hub_is_not_accepted(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    """A leftover part from a larger upstream version must not pass as complete."""
    base, _, payload = hub
    (tmp_path / "tiny.gguf.part").write_bytes(payload + b"stale tail of an older upload")
    with pytest.raises(ModelDownloadError, match="the server announced"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_full_disk_is_reported_as_such_not_retried_as_a_network_error(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, state, _ = hub
    (tmp_path / "tiny.gguf.part").symlink_to("/dev/full")  # every write: no space left
    with pytest.raises(ModelDownloadError, match="cannot write .*No space left on device"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf")
    assert len(state.requests) == 1
    assert not (tmp_path / "tiny.gguf").exists()


def test_unusable_models_directory_is_one_clear_error(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    base, _, _ = hub
    (tmp_path / "models").write_text("a file where the models directory should be")
    with pytest.raises(ModelDownloadError, match="cannot write .*models"):
        download_file(base + FILE_PATH, tmp_path / "models" / "tiny.gguf")


def test_busy_hub_is_tried_again(hub: tuple[str, HubState, bytes], tmp_path: Path) -> None:
    base, state, payload = hub
    state.fail_once[FILE_PATH] = 503
    target = download_file(base + FILE_PATH, tmp_path / "tiny.gguf", sha256=sha256(payload))
    assert target.read_bytes() == payload
    assert len(state.requests) == 2


def test_refused_access_is_final(hub: tuple[str, HubState, bytes], tmp_path: Path) -> None:
    base, state, _ = hub
    state.fail_once[FILE_PATH] = 403
    with pytest.raises(ModelDownloadError, match="refused access.*HF_TOKEN"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf")
    assert len(state.requests) == 1


def test_file_changed_upstream_mid_pull_is_fetched_anew_not_spliced(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    """Same size, different bytes (a re-upload): only the size and header would be checked."""
    base, state, payload = hub
    state.drop_after[FILE_PATH] = 200_000
    with pytest.raises(ModelDownloadError, match="resume"):
        download_file(base + FILE_PATH, tmp_path / "tiny.gguf", attempts=1)
    reuploaded = payload[:100_000] + bytes(1000) + payload[101_000:]  # within the kept part
    state.files[FILE_PATH] = reuploaded
    target = download_file(base + FILE_PATH, tmp_path / "tiny.gguf")
    assert target.read_bytes() == reuploaded
    assert list(tmp_path.iterdir()) == [target]  # no part or version file left behind


def test_a_second_pull_of_the_same_file_waits_its_turn(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    """Two writers would append to one part, or to the model it became after verification."""
    base, _, payload = hub
    started, proceed = threading.Event(), threading.Event()

    def paused_at_start(done: int, total: int | None) -> None:
        started.set()
        proceed.wait(timeout=30)

    first = threading.Thread(
        target=download_file,
        args=(base + FILE_PATH, tmp_path / "tiny.gguf"),
        kwargs={"progress": paused_at_start},
    )
    first.start()
    try:
        assert started.wait(timeout=30)
        with pytest.raises(ModelDownloadError, match="already being downloaded"):
            download_file(base + FILE_PATH, tmp_path / "tiny.gguf")
    finally:
        proceed.set()
        first.join()
    assert (tmp_path / "tiny.gguf").read_bytes() == payload
    assert list(tmp_path.iterdir()) == [tmp_path / "tiny.gguf"]
