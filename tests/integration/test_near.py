"""Location `near=latitude|longitude|distance|units`: the great-circle distance from the point
is at most the distance (default units km; without a distance, 5 km). Positions across the
antimeridian and around a pole, units of length in UCUM, a distance that is not a length, and
a Location that moves. Distances between the places below (haversine, mean Earth radius
6371.0088 km) are in the comments.
"""
import math
import urllib.parse

from conftest import assert_outcome

STRICT = {"Prefer": "handling=strict"}
TAG = "urn:concerto:test|near"

PLACES = {
    "dam": (52.3731, 4.8926),       # Amsterdam, Dam square
    "rijks": (52.3600, 4.8852),     # Rijksmuseum, 1.55 km from dam
    "utrecht": (52.0907, 5.1214),   # 35 km from dam
    "london": (51.5074, -0.1278),   # 358 km from dam
    "fiji-east": (-17.7, 179.95),   # 10.6 km across the antimeridian from fiji-west
    "fiji-west": (-17.7, -179.95),
    "pole-a": (89.95, 0.0),         # 11.1 km across the pole from pole-b
    "pole-b": (89.95, 180.0),
}


def km(a, b):
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def load(client):
    for lid, (lat, lon) in PLACES.items():
        r = client.put(f"Location/{lid}", {
            "resourceType": "Location", "id": lid, "name": lid,
            "meta": {"tag": [{"system": "urn:concerto:test", "code": "near"}]},
            "position": {"latitude": lat, "longitude": lon}})
        assert r.status in (200, 201), r
    r = client.put("Location/nowhere", {
        "resourceType": "Location", "id": "nowhere", "name": "nowhere",
        "meta": {"tag": [{"system": "urn:concerto:test", "code": "near"}]}})
    assert r.status in (200, 201), r


def ids(client, value, headers=STRICT, extra=()):
    q = urllib.parse.urlencode([("near", value), ("_tag", TAG), *extra])
    r = client.get(f"Location?{q}", headers=headers)
    assert r.status == 200, r
    return sorted(e["resource"]["id"] for e in r.json.get("entry", [])
                  if e["search"]["mode"] == "match")


def test_the_distances_in_the_comments():
    assert 1.5 < km(PLACES["dam"], PLACES["rijks"]) < 1.6
    assert 34 < km(PLACES["dam"], PLACES["utrecht"]) < 36
    assert 357 < km(PLACES["dam"], PLACES["london"]) < 359
    assert 10 < km(PLACES["fiji-east"], PLACES["fiji-west"]) < 11
    assert 11 < km(PLACES["pole-a"], PLACES["pole-b"]) < 11.2


def test_near_with_units_and_defaults(client):
    load(client)
    dam = "52.3731|4.8926"
    assert ids(client, f"{dam}|1|km") == ["dam"]
    assert ids(client, f"{dam}|2|km") == ["dam", "rijks"]
    assert ids(client, f"{dam}|2") == ["dam", "rijks"]            # km by default
    assert ids(client, f"{dam}|1500|m") == ["dam"]
    assert ids(client, f"{dam}|1600|m") == ["dam", "rijks"]
    assert ids(client, f"{dam}|1|[mi_i]") == ["dam", "rijks"]     # 1.609 km
    assert ids(client, f"{dam}|0.9|[mi_i]") == ["dam"]            # 1.448 km
    assert ids(client, f"{dam}|40|km") == ["dam", "rijks", "utrecht"]
    assert ids(client, f"{dam}|400|km") == ["dam", "london", "rijks", "utrecht"]
    assert ids(client, dam) == ["dam", "rijks"]                   # 5 km without a distance
    assert ids(client, f"{dam}|0|km") == ["dam"]
    # with other criteria, and an OR of two points
    assert ids(client, f"{dam}|400|km", extra=[("name", "u")]) == ["utrecht"]
    assert ids(client, "51.5074|-0.1278|1|km,52.0907|5.1214|1|km") == ["london", "utrecht"]


def test_antimeridian_and_poles(client):
    load(client)
    assert ids(client, "-17.7|179.95|11|km") == ["fiji-east", "fiji-west"]
    assert ids(client, "-17.7|-179.95|11|km") == ["fiji-east", "fiji-west"]
    assert ids(client, "-17.7|179.95|5|km") == ["fiji-east"]
    assert ids(client, "89.95|0|12|km") == ["pole-a", "pole-b"]
    assert ids(client, "89.95|0|5|km") == ["pole-a"]
    assert ids(client, "90|0|6|km") == ["pole-a", "pole-b"]         # 5.6 km from each


def test_a_distance_that_is_not_a_length(client):
    load(client)
    q = urllib.parse.urlencode([("near", "52.3731|4.8926|5|kg")])
    r = client.get(f"Location?{q}", headers=STRICT)
    assert_outcome(r, 400, "invalid", '"52.3731|4.8926|5|kg" is not a valid distance for near')
    r = client.get(f"Location?{q}&_tag={TAG}")
    assert r.status == 200, r
    outcome = [e for e in r.json["entry"] if e["search"]["mode"] == "outcome"]
    assert "is not a valid distance for near" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    r = client.get("Location?" + urllib.parse.urlencode([("near", "52|4|-1|km")]), headers=STRICT)
    assert r.status == 400, r


def test_a_location_that_moves(client):
    load(client)
    assert ids(client, "52.0907|5.1214|1|km") == ["utrecht"]
    r = client.put("Location/rijks", {"resourceType": "Location", "id": "rijks", "name": "rijks",
                                      "meta": {"tag": [{"system": "urn:concerto:test",
                                                        "code": "near"}]},
                                      "position": {"latitude": 52.0910, "longitude": 5.1220}})
    assert r.status == 200, r
    assert ids(client, "52.0907|5.1214|1|km") == ["rijks", "utrecht"]
    assert client.delete("Location/utrecht").status in (200, 204)
    assert ids(client, "52.0907|5.1214|1|km") == ["rijks"]
