"""What a definitions file is refused for, as the tests of loading and of rules read it."""

from __future__ import annotations

import pytest

from exportd.definitions.loader import DefinitionError, definitions_from_text


def problems_of(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        definitions_from_text(text, "shop.toml")
    return caught.value.problems
