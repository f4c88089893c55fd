from django.contrib import admin

from ehrlaunch.models import EhrSystem


@admin.register(EhrSystem)
class EhrSystemAdmin(admin.ModelAdmin):
    list_display = ("name", "issuer", "algorithm", "audience", "active")
    list_filter = ("algorithm", "active")
    search_fields = ("name", "issuer")
