from django.contrib import admin

from serving.models import ApiKey, PredictionLog, ServingSettings


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "project", "created_at", "revoked_at")
    list_filter = ("project",)
    readonly_fields = ("prefix", "key_hash", "created_at", "created_by")  # a key is made on its page, never here


@admin.register(ServingSettings)
class ServingSettingsAdmin(admin.ModelAdmin):
    list_display = ("project", "keep_images_days")


@admin.register(PredictionLog)
class PredictionLogAdmin(admin.ModelAdmin):
    list_display = ("uid", "project", "created_at", "version_number", "top_class", "confidence")
    list_filter = ("project",)
    date_hierarchy = "created_at"
