from django.contrib import admin

from ehrlaunch.models import EhrSystem, SsoIdentity


@admin.register(EhrSystem)
class EhrSystemAdmin(admin.ModelAdmin):
    list_display = ("name", "issuer", "algorithm", "audience", "active")
    list_filter = ("algorithm", "active")
    search_fields = ("name", "issuer")


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "issuer", "subject", "last_login_at")
    search_fields = ("issuer", "subject", "user__username")
    readonly_fields = ("user", "issuer", "subject", "created_at", "last_login_at")
