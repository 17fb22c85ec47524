"""API tokens over HTTP: exchange a password for a token, or show and replace your own (labeling.api.tokens makes and
checks them). Token answers are never cached. The password exchange is throttled (REST_FRAMEWORK's
DEFAULT_THROTTLE_RATES, scope "token") and counts failed passwords with the sign-in pages (labeling.services.sign_in):
a username locked out there is locked out here, and the other way round."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from labeling.api.base import (
    NestedNameAutoSchema,
    no_store,
)
from labeling.api.tokens import token_get, token_get_or_replace, token_replace
from labeling.services import sign_in


class TokenObtainApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token (made on first use, and anew after a password
    change). Throttled per client address (429 with Retry-After)."""

    schema = NestedNameAutoSchema()
    permission_classes = []
    authentication_classes = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=ObtainAuthToken.serializer_class, responses={200: OutputSerializer}, auth=[])
    def post(self, request, *args, **kwargs):
        username = request.data.get("username", "") if hasattr(request.data, "get") else ""
        key = sign_in.failures_key(request, username if isinstance(username, str) else "")
        if sign_in.locked_out(key):
            refused = Response({"detail": sign_in.refused_message()}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            refused["Retry-After"] = str(settings.LABELLOOP_LOGIN_WINDOW_SECONDS)
            return no_store(refused)
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            if "username" in request.data and "password" in request.data:  # a password checked and refused
                sign_in.failure_record(key)
            serializer.is_valid(raise_exception=True)
        sign_in.failures_clear(key)
        token = token_get_or_replace(user=serializer.validated_data["user"])
        return no_store(Response({"token": token.key}))


class MyTokenApi(APIView):
    """Show the signed-in user's token (GET; null when there is none, GET never makes one) or replace it with a new
    one (POST)."""

    schema = NestedNameAutoSchema()
    permission_classes = [IsAuthenticated]
    throttle_scope = "token"

    def get_throttles(self):
        # Only making tokens is throttled; reading yours is not.
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        token = serializers.CharField(allow_null=True)
        header = serializers.CharField(allow_null=True, help_text="What to send in the Authorization header.")

    def _answer(self, request, key: str | None) -> Response:
        data = {"username": request.user.get_username(), "token": key, "header": f"Token {key}" if key else None}
        return no_store(Response(self.OutputSerializer(data).data))

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        token = token_get(user=request.user)
        return self._answer(request, token.key if token else None)

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request):
        return self._answer(request, token_replace(user=request.user).key)
