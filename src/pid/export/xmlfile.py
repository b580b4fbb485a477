"""Reading XML exports safely."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from pid.core.errors import PidInputError


def parse_xml(path: Path) -> etree._Element:
    """Parse an XML file into its root element, refusing what is not plain data.

    Raises
    ------
    PidInputError
        When the file is missing, unreadable or not well-formed XML.
    """
    if not path.is_file():
        raise PidInputError(f"{path}: file not found")
    # No entities, no network, no comments: data only, nothing fetched or expanded.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
    )
    try:
        return etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise PidInputError(f"{path}: not well-formed XML: {exc}") from exc
    except OSError as exc:
        raise PidInputError(f"{path}: cannot read: {exc}") from exc
