"""Frame sources (files, cameras, streams, image folders) and result sinks (video, JSONL, CSV, COCO)."""
