from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from access_audit.services import access_record_modality_query

from .forms import ModalityQueryForm
from .query import modality_query, modality_query_dataset, query_targets


@require_GET
def query(request: HttpRequest) -> HttpResponse:
    """Run the C-FIND a room's scanner would run and show the answers exactly as received.

    A GET: the query reads and changes nothing, and the address can be shared with support staff.
    """
    form = ModalityQueryForm(request.GET if "room" in request.GET else None)
    result = sent = None
    if form.is_bound and form.is_valid():
        room, day = form.cleaned_data["room"], form.cleaned_data["day"]
        target = query_targets()[form.cleaned_data["target"]]
        sent = modality_query_dataset(room=room, day=day)
        result = modality_query(room=room, day=day, target=target)
        access_record_modality_query(request=request, query=sent, result=result)
    return render(request, "mwl_server/query.html", {"form": form, "result": result, "sent": sent})
