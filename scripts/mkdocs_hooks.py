"""MkDocs hooks: publish the repository files that the docs link to outside ``docs/``.

A few pages link to files beside ``docs/`` (the manifest's JSON Schema, the hook
specifications, the benchmarks' README) with relative links such as
``../core/src/dbkeeper/backups/manifest.schema.json``, which work when the Markdown is read in the
repository. These hooks add each linked file to the site at its path in the repository, so
the same links work on the site too: a Markdown file becomes a page (it must then be in the
navigation), any other file is copied as it is. A link to a file that does not exist is
left alone, and the strict build reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel

# The target of an inline Markdown link that leaves the docs directory: ](../path#anchor).
OUTSIDE_LINK = re.compile(r"\]\((\.\./[^)\s#]+)")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every repository file that a page links to outside the docs directory."""
    root = Path(config.config_file_path).parent.resolve()
    for link in sorted(_outside_links(files)):
        source = (Path(config.docs_dir) / link).resolve()
        if source.is_file() and source.is_relative_to(root) and link not in files:
            files.append(_repository_file(link, source.relative_to(root).as_posix(), config))
    return files


def _outside_links(files: Files) -> set[str]:
    """The targets of the pages' links that leave the docs directory, relative to it."""
    links: set[str] = set()
    for page in files.documentation_pages():
        folder = posixpath.dirname(page.src_uri)
        for target in OUTSIDE_LINK.findall(page.content_string):
            link = posixpath.normpath(posixpath.join(folder, target))
            if link.startswith("../"):
                links.add(link)
    return links


def _repository_file(link: str, in_repository: str, config: MkDocsConfig) -> File:
    """The file *link* points to, published at its path in the repository, *in_repository*."""
    published = File(in_repository, None, config.site_dir, config.use_directory_urls)
    return File(
        link,
        config.docs_dir,
        config.site_dir,
        config.use_directory_urls,
        dest_uri=published.dest_uri,
        inclusion=InclusionLevel.INCLUDED,  # a path starting with "." would be excluded by default
    )
