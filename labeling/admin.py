from django.contrib import admin

from labeling import models


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "task_type", "annotations_per_item", "created_at")
    search_fields = ("name", "slug")


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "role")
    list_filter = ("role",)


@admin.register(models.LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "parent", "hotkey", "archived")
    list_filter = ("project",)


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("original_name", "project", "state", "split", "priority", "annotation_count")
    list_filter = ("project", "state", "split")
    raw_id_fields = ("lease_user",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Annotations and reviews are history: the admin may look, never rewrite."""

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "user", "skipped", "created_at")
    raw_id_fields = ("item", "undoes")


@admin.register(models.Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "annotation", "reviewer", "verdict", "created_at")


@admin.register(models.ResolvedLabel)
class ResolvedLabelAdmin(admin.ModelAdmin):
    list_display = ("item", "source", "updated_at")
    raw_id_fields = ("item",)


@admin.register(models.ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ("item", "reason", "score", "done")


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "status", "done", "total", "created_at")
    list_filter = ("kind", "status")
