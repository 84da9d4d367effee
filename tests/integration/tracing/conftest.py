from tests.support.spans import spans

__all__ = ["spans"]
