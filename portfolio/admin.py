"""Django admin: chains, endpoints, assets, wallets, sync state and prices."""

from django.contrib import admin

from portfolio import models

admin.site.register(models.Chain)
