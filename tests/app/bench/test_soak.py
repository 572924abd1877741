"""The soak in short mode: the batch job over a synthetic scene with people walking in and out keeps
memory flat and the track table bounded by the scene. The full run is ``occlupose soak`` (20,000
frames), whose numbers are in the README."""

from __future__ import annotations

from app.bench.soak import SoakConfig, run_soak

FRAMES = 1500


def test_short_soak_memory_flat_and_track_table_bounded():
    report = run_soak(SoakConfig(frames=FRAMES, samples=20))
    print(*report.lines(), sep="\n")
    assert report.frames == FRAMES
    assert report.people >= 20  # people really came and went
    assert report.max_tracks <= report.track_bound  # never more tracks than the scene can justify
    assert report.track_ids <= 2 * report.people  # identities did not fragment
    growth = report.rss_at("end") - report.rss_at("start")
    # One frame is 225 kB here: keeping every frame would add ~300 MiB; the object count below catches
    # smaller leaks (a record kept per frame).
    assert growth < 15, report.rss_mb
    (f0, objects0), (f1, objects1) = report.gc_objects
    assert objects1 - objects0 < (f1 - f0) / 2, report.gc_objects  # no Python object kept per frame
