from django.contrib import admin

from training import models


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "status", "trigger", "mode", "label_count", "device", "created_at")
    list_filter = ("status", "mode")


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("project", "number", "architecture", "label_count", "active", "created_at")


@admin.register(models.Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("item", "model_version", "predicted_class", "confidence", "uncertainty")
    raw_id_fields = ("item",)
