"""The NFT gallery in pages: 48 a page, the filters kept in the page links, and as many queries for a
hundred NFTs as for one."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portfolio.models import Asset, NftItem
from tests.portfolio.test_pages import make_wallet
from tests.portfolio.test_pages_at_scale import queries_of

pytestmark = pytest.mark.django_db


def nfts(owner, count, *, label="Main", address="0x" + "ab" * 20, spam=0):
    wallet, wc = make_wallet(owner, label=label, address=address)
    collection = Asset.objects.create(chain=wc.chain, kind=Asset.NFT_COLLECTION, address="0x" + address[-4:] * 10,
                                      symbol="ART", name=f"Art of {label}")
    junk = Asset.objects.create(chain=wc.chain, kind=Asset.NFT_COLLECTION, address="0x" + address[-4:] * 9 + "ffff",
                                symbol="JUNK", name="Claim now", is_spam=True)
    NftItem.objects.bulk_create([NftItem(wallet_chain=wc, collection=collection, token_id=f"{i:04d}", name=f"{label} #{i:04d}") for i in range(count)]
                                + [NftItem(wallet_chain=wc, collection=junk, token_id=str(i)) for i in range(spam)])
    return wallet


def test_a_hundred_nfts_are_three_pages(owner, owner_client):
    wallet = nfts(owner, 100, spam=3)
    first = owner_client.get(reverse("nfts")).content.decode()
    assert first.count('data-testid="nft-card"') == 48 and "page 1 of 3" in first and "Main #0047" in first
    assert "3 spam items hidden" in first
    last = owner_client.get(reverse("nfts"), {"page": 3, "wallet": wallet.pk}).content.decode()
    assert last.count('data-testid="nft-card"') == 4 and "Main #0099" in last and "Main #0047" not in last
    assert f'href="?page=2&amp;wallet={wallet.pk}"' in last  # the filter stays in the page links
    assert owner_client.get(reverse("nfts"), {"page": 99}).content.decode().count('data-testid="nft-card"') == 4


def test_htmx_gets_a_page_of_the_gallery(owner, owner_client):
    nfts(owner, 60)
    body = owner_client.get(reverse("nfts"), {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="nft-gallery").content.decode()
    assert "<html" not in body and body.count('data-testid="nft-card"') == 12


def test_the_gallery_runs_as_many_queries_for_many_nfts_as_for_one(owner, outsider, owner_client, outsider_client):
    nfts(owner, 1)
    for n in range(5):
        nfts(outsider, 40, label=f"w{n}", address=f"0x{n:040x}", spam=2)
    assert queries_of(owner_client, reverse("nfts"))[0] == queries_of(outsider_client, reverse("nfts"))[0]
