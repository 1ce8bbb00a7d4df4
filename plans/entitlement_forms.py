"""The entitlement values form shared by the plan's and the subscription's admin pages: one
checkbox per feature (granted or not) and one field per privilege, of its type (a number,
yes/no, one of the options, text). Outside `plans.admin` so that the customers admin (the
subscription's page) can use it."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.admin_base import theme_widgets
from plans.models import Feature, Privilege
from plans.services.entitlements import cast_value

ValueType = Privilege.ValueType


def _value_field(privilege: Privilege, placeholder: str | None) -> forms.Field:
    label = privilege.name or privilege.code
    attrs = {"placeholder": placeholder} if placeholder else {}
    match privilege.value_type:
        case ValueType.INTEGER:
            return forms.IntegerField(
                label=label, required=False, widget=forms.NumberInput(attrs=attrs)
            )
        case ValueType.BOOLEAN:
            return forms.TypedChoiceField(
                label=label,
                required=False,
                choices=[("", placeholder or "—"), ("true", _("Yes")), ("false", _("No"))],
                coerce=lambda value: value == "true",
                empty_value=None,
            )
        case ValueType.SELECT:
            options = privilege.config.get("select_options", [])
            return forms.ChoiceField(
                label=label,
                required=False,
                choices=[("", placeholder or "—"), *((o, o) for o in options)],
            )
    return forms.CharField(label=label, required=False, widget=forms.TextInput(attrs=attrs))


def _shown(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _initial(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class EntitlementValuesForm(forms.Form):
    """One checkbox per feature (entitled or not) and one field per privilege, of its type.

    `entitled`: the feature codes checked at first; `values`: `{(feature, privilege): value}`
    as the API renders them; `placeholders`: the same, shown greyed in empty fields (a
    subscription's page shows its plan's values there)."""

    def __init__(
        self,
        *args: object,
        features: list[Feature],
        entitled: set[str],
        values: dict[tuple[str, str], object],
        placeholders: dict[tuple[str, str], object] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        placeholders = placeholders or {}
        self.rows: list[tuple[Feature, str, list[tuple[Privilege, str]]]] = []
        for feature in features:
            check = f"feature_{feature.pk}"
            self.fields[check] = forms.BooleanField(
                label=feature.name or feature.code, required=False
            )
            self.initial[check] = feature.code in entitled
            names = []
            for privilege in feature.privileges.alive().order_by("created_at", "id"):
                name = f"privilege_{privilege.pk}"
                key = (feature.code, privilege.code)
                self.fields[name] = _value_field(privilege, _shown(placeholders.get(key)))
                if values.get(key) is not None:
                    self.initial[name] = _initial(values[key])
                names.append((privilege, name))
            self.rows.append((feature, check, names))
        theme_widgets(self.fields)

    def groups(self) -> list[dict]:
        """For the template: each feature's checkbox and its privileges' bound fields."""
        return [
            {
                "feature": feature,
                "entitled": self[check],
                "privileges": [(privilege, self[name]) for privilege, name in names],
            }
            for feature, check, names in self.rows
        ]

    def entitlements(self) -> dict[str, dict[str, object]]:
        """`{feature_code: {privilege_code: value}}` of the checked features (or those given a
        value), empty fields left out."""
        chosen: dict[str, dict[str, object]] = {}
        for feature, check, names in self.rows:
            given = {
                privilege.code: self.cleaned_data[name]
                for privilege, name in names
                if self.cleaned_data.get(name) not in (None, "")
            }
            if self.cleaned_data.get(check) or given:
                chosen[feature.code] = given
        return chosen


def organization_features(organization_id: object) -> list[Feature]:
    return list(
        Feature.objects.alive().filter(organization_id=organization_id).order_by("code", "id")
    )


def entitlements_summary(entitlements: list) -> str:
    """`seats (max_seats 10, sso Yes); storage` for a read-only field."""
    parts = []
    for entitlement in entitlements:
        values = ", ".join(
            f"{v.privilege.code} {_shown(cast_value(v.value, v.privilege.value_type))}"
            for v in entitlement.values.all()
            if v.privilege.deleted_at is None
        )
        parts.append(
            f"{entitlement.feature.code} ({values})" if values else entitlement.feature.code
        )
    return "; ".join(parts) or "—"
