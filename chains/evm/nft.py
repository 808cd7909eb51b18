"""NFT metadata: token URI templating and an injectable, failure-tolerant metadata loader."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from chains.evm.abi import clean_text
from chains.metadata import fetch_json, image_url

MetadataFetcher = Callable[[str], dict[str, Any]]


def default_fetcher(ipfs_gateway: str) -> MetadataFetcher:
    """``chains.metadata.fetch_json`` bound to the chain's IPFS gateway (data:, ipfs, public http(s))."""
    return partial(fetch_json, ipfs_gateway=ipfs_gateway)


def expand_uri(uri: str, token_id: int) -> str:
    """ERC-1155 ``{id}``: the id as 64 lowercase hex characters, no 0x."""
    return uri.replace("{id}", f"{token_id:064x}")


@dataclass(frozen=True)
class NftMetadata:
    uri: str
    name: str = ""
    image: str = ""
    description: str = ""

    def as_cursor(self) -> dict[str, str]:
        return {"uri": self.uri, "name": self.name, "image": self.image, "description": self.description}


def load_metadata(uri: str, fetcher: MetadataFetcher, ipfs_gateway: str) -> NftMetadata:
    """Fetch and read name / image / description. Raises ``MetadataError`` (or whatever the injected
    fetcher raises) when the document cannot be fetched or is not a JSON object."""
    meta = fetcher(uri)
    name = meta.get("name")
    description = meta.get("description")
    return NftMetadata(
        uri=uri,
        name=clean_text(name) if isinstance(name, str) else "",
        image=image_url(meta, ipfs_gateway)[:2000],
        description=description.strip()[:1000] if isinstance(description, str) else "",
    )


def display_url(uri: str) -> str:
    """What ``NftHolding.metadata_url`` carries: the URI, except inline data: documents (kept out)."""
    return "" if uri.startswith("data:") else uri[:2000]
