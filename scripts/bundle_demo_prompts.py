"""Pick the demo's prompts from ../shared/data/diffusiondb_prompts.jsonl into annotation/demo_data/.

Run once by a developer (the product never reads ../shared): python scripts/bundle_demo_prompts.py
Categories are guessed from keywords, as a first pass a person would then correct in the filter form.
"""

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotation.prompts.normalize import normalize_prompt  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "diffusiondb_prompts.jsonl"
TARGET = ROOT / "annotation" / "demo_data" / "prompts.jsonl"
COUNT = 300
KEYWORDS = {
    "animals": ("cat", "dog", "bird", "horse", "wolf", "lion", "fox", "owl", "fish", "dragon", "animal", "bear"),
    "plants": ("flower", "tree", "forest", "plant", "rose", "garden", "leaf", "mushroom"),
    "food": ("food", "cake", "pizza", "burger", "fruit", "coffee", "soup", "bread", "dish", "drink"),
    "objects": ("car", "ship", "robot", "sword", "machine", "vehicle", "helmet", "armor", "chair", "lamp"),
    "scenes": ("city", "landscape", "street", "room", "castle", "mountain", "ocean", "interior", "village"),
    "characters": ("portrait", "woman", "man", "girl", "boy", "king", "queen", "warrior", "person", "face"),
    "arts": ("abstract", "painting", "pattern", "poster", "logo", "sculpture"),
}


def guess_category(text: str) -> str:
    words = set(normalize_prompt(text).replace(",", " ").split())
    for category, keywords in KEYWORDS.items():
        if words.intersection(keywords):
            return category
    return "arts"


def main() -> None:
    rows = [json.loads(line) for line in SOURCE.open(encoding="utf-8")]
    random.Random(2024).shuffle(rows)
    seen, picked = set(), []
    for row in rows:
        text = row["prompt"].strip()
        key = normalize_prompt(text)
        if not 20 <= len(text) <= 300 or key in seen:
            continue
        seen.add(key)
        picked.append({**row, "prompt": text, "category": guess_category(text)})
        if len(picked) == COUNT:
            break
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    with TARGET.open("w", encoding="utf-8") as out:
        for row in picked:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(picked)} prompts to {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
