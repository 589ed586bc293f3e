"""Keeps the catalogue's files canonical (sorted keys, two-space indent, one key a line), and folds
in the texts a branch from before the catalogue still added to the web's old files
(`services/web/messages.json`, `services/web/messages/*.json`, shaped {language: {key: text}}),
then removes those files. A key defined twice with different texts is refused, not overwritten.

    python scripts/catalogue.py            # or: make catalogue
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "services" / "shared" / "catalogue"
LEGACY = [
    ROOT / "services" / "web" / "messages.json",
    *(ROOT / "services/web/messages").glob("*.json"),
]


def main() -> int:
    files = {path.stem: path for path in sorted(CATALOGUE.glob("*.json"))}
    texts = {
        language: json.loads(path.read_text(encoding="utf-8")) for language, path in files.items()
    }
    folded = []
    for legacy in (path for path in LEGACY if path.exists()):
        for language, added in json.loads(legacy.read_text(encoding="utf-8")).items():
            if language not in texts:
                print(f"{legacy}: no catalogue for {language}", file=sys.stderr)
                return 1
            for key, text in added.items():
                if texts[language].get(key, text) != text:
                    print(f"{legacy}: {language} {key} differs from the catalogue", file=sys.stderr)
                    return 1
                texts[language][key] = text
        folded.append(legacy)
    for language, path in files.items():
        canonical = json.dumps(texts[language], indent=2, sort_keys=True, ensure_ascii=False)
        path.write_text(canonical + "\n", encoding="utf-8")
    for legacy in folded:
        legacy.unlink()
        print(f"folded {legacy.relative_to(ROOT)} into {CATALOGUE.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
