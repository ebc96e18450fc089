"""API clients in the admin: the token is shown once, on the page after saving, never again."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import ApiClient, Scope
from .services import api_client_create, api_client_new_token, api_client_save


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiClient
        fields = ["name", "scopes", "allowed_addresses", "rate_limit", "enabled"]


def _show_token(request, client: ApiClient, token: str) -> None:
    messages.warning(
        request,
        format_html(
            _("The token of {name} is <code>{token}</code>. Copy it now: it is shown only this once."),
            name=client.name,
            token=token,
        ),
    )


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = ["name", "scope_list", "enabled", "token_issued_at", "last_used_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    readonly_fields = ["user", "token_prefix", "token_issued_at", "last_used_at", "created_at"]
    actions = ["new_token"]

    @admin.display(description=gettext_lazy("scopes"))
    def scope_list(self, client: ApiClient) -> str:
        return ", ".join(client.scopes)

    def save_model(self, request, obj: ApiClient, form, change: bool) -> None:
        if change:
            api_client_save(client=obj)
            return
        created, token = api_client_create(
            name=obj.name,
            scopes=obj.scopes,
            allowed_addresses=obj.allowed_addresses,
            rate_limit=obj.rate_limit,
            enabled=obj.enabled,
        )
        obj.pk = created.pk
        obj.user = created.user
        obj.token_prefix = created.token_prefix
        _show_token(request, created, token)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its account is named in the history: disable instead

    @admin.action(description=gettext_lazy("Issue a new token (the old one stops working)"))
    def new_token(self, request, queryset) -> None:
        for client in queryset:
            _show_token(request, client, api_client_new_token(client=client))
