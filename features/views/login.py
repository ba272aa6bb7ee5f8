"""The login form: Django's, with its username length enforced before anyone authenticates.

Django's AuthenticationForm sets the field's max_length after the field is built, so no
validator checks it; a 6,000-character "username" then reached authenticate() and the login
throttle's failure record (a 255-character column), and the database answered with a 500.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class LoginForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        limit = getattr(self.fields["username"], "max_length", None) or 150
        if len(username) > limit:
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )
        return super().clean()
