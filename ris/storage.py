"""Static files in production: WhiteNoise's hashed, pre-compressed files, minus source-map rewriting."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns):
    return tuple(
        (glob, tuple(p for p in pats if "sourceMappingURL" not in (p[0] if isinstance(p, tuple) else p)))
        for glob, pats in patterns
    )


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """CompressedManifestStaticFilesStorage that leaves `sourceMappingURL` comments alone.

    Vendored minified files (Bootstrap) name .map files that are not shipped; rewriting those references
    makes collectstatic fail on the missing file. Browsers only fetch maps with developer tools open.
    """

    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
