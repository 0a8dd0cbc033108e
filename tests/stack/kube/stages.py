# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the kwok Stages of the test cluster to one YAML file.

Giving kwokctl any Stage replaces all of its default Stages, so the file holds
kwok's defaults (read from the kwok module in the Go module cache, never
copied into this repository), kwok's volume Stages, and the project's own
Stages from stages.yaml next to this script. kwok's pod-ready Stage is
narrowed so that pods the pgtikv-test-fail Stage owns never become Ready.

Usage: stages.py KWOK_STAGE_DIR OUTPUT
"""

import pathlib
import sys

import yaml

FAIL_ANNOTATION = "pgtikv.cloud/test-fail"

# kwokctl's defaults (node-initialize, node-heartbeat-with-lease, pod-ready,
# pod-complete, pod-delete) and the volume Stages, relative to KWOK_STAGE_DIR.
UPSTREAM = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "volume/fast/pvc-provision.yaml",
    "volume/fast/pv-bind.yaml",
    "volume/fast/pvc-delete.yaml",
    "volume/fast/pv-delete.yaml",
)


def stages_in(path):
    with open(path, encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc and doc.get("kind") == "Stage"]


def main(stage_dir, output):
    stages = []
    for rel in UPSTREAM:
        found = stages_in(pathlib.Path(stage_dir, rel))
        if not found:
            sys.exit("no Stage in %s/%s" % (stage_dir, rel))
        stages.extend(found)
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            stage["spec"]["selector"]["matchExpressions"].append(
                {"key": '.metadata.annotations["%s"]' % FAIL_ANNOTATION, "operator": "NotIn", "values": ["true"]}
            )
            break
    else:
        sys.exit("kwok's pod-ready Stage not found")
    with open(pathlib.Path(__file__).with_name("stages.yaml"), encoding="utf-8") as fh:
        stages.extend(yaml.safe_load(fh))
    names = [s["metadata"]["name"] for s in stages]
    if len(set(names)) != len(names):
        sys.exit("duplicate Stage names: %s" % names)
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.safe_dump_all(stages, fh, sort_keys=False)
    pathlib.Path(tmp).replace(output)
    print(" ".join(names))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
