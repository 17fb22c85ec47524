"""REST API resources for ML staff: projects, classes, items, annotations, reviews, jobs, dataset exports, tokens.

Every endpoint goes through labeling.permissions.ProjectCapability (another project's objects -> 404, a role
without the capability -> 403, anonymous -> 401). Big lists use keyset (cursor) pagination ordered by id, so
page 1,000 of 100k items costs what page 1 costs. One APIView per write; generics for read-only listings.

What a role sees: an annotator gets what labeling needs (items without their labels, state or gold flag; jobs without
parameters, results or messages, which can hold server paths); resolved labels, gold items and job details are for
roles with Capability.VIEW_METRICS (reviewer, manager, ML engineer). Token answers are never cached, and the
password exchange is throttled (REST_FRAMEWORK's DEFAULT_THROTTLE_RATES, scope "token").

This module is the URL list; shared plumbing lives in `base`, each resource in its own module: `auth` (tokens),
`projects` (projects and classes), `items`, `annotations` (annotation and review history), `jobs` (jobs and dataset
exports). The queue API (next item, labels) is `queue`.
"""

from __future__ import annotations

from django.urls import path

from labeling.api import annotations, auth, imports, items, jobs, projects

urlpatterns = [
    path("auth/token/", auth.TokenObtainApi.as_view(), name="api-token-obtain"),
    path("me/token/", auth.MyTokenApi.as_view(), name="api-my-token"),
    path("projects/", projects.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<slug:slug>/classes/", projects.ClassListApi.as_view(), name="api-classes"),
    path("projects/<slug:slug>/classes/create/", projects.ClassCreateApi.as_view(), name="api-class-create"),
    path("projects/<slug:slug>/classes/<int:class_id>/", projects.ClassUpdateApi.as_view(), name="api-class"),
    path("projects/<slug:slug>/items/", items.ItemListApi.as_view(), name="api-items"),
    path("projects/<slug:slug>/items/<int:item_id>/", items.ItemDetailApi.as_view(), name="api-item"),
    # POST projects/<slug>/annotations/ is the queue API's create; the history list sits beside it.
    path("projects/<slug:slug>/annotations/list/", annotations.AnnotationListApi.as_view(), name="api-annotations"),
    path("projects/<slug:slug>/reviews/", annotations.ReviewListApi.as_view(), name="api-reviews"),
    path("projects/<slug:slug>/reviews/undo/", annotations.ReviewUndoApi.as_view(), name="api-review-undo"),
    path("projects/<slug:slug>/imports/", imports.ImportCreateApi.as_view(), name="api-imports"),
    path("projects/<slug:slug>/jobs/", jobs.JobListApi.as_view(), name="api-jobs"),
    path("projects/<slug:slug>/jobs/<int:job_id>/", jobs.JobDetailApi.as_view(), name="api-job"),
    path("projects/<slug:slug>/jobs/<int:job_id>/download/", jobs.JobDownloadApi.as_view(), name="api-job-download"),
    path("projects/<slug:slug>/exports/dataset/", jobs.DatasetExportStartApi.as_view(), name="api-export-dataset"),
]
