#!/usr/bin/python3
"""Writes N realistic FHIR R4 Patient resources, one JSON document per line (NDJSON).

Deterministic: the same --count and --seed always give the same bytes. Each Patient has
identifiers (MRN, national id), one or two names, telecom, gender, birthDate, one or two
addresses, marital status, a language and sometimes a contact, about 1 KB of compact JSON. Standard
library only.

usage: gen_patients.py [--count N] [--seed S] [--out FILE]
"""
import argparse
import json
import random
import sys

GIVEN_F = ["Olivia", "Emma", "Amelia", "Sophia", "Isabella", "Mia", "Harper", "Evelyn", "Abigail",
           "Emily", "Ella", "Elizabeth", "Camila", "Luna", "Sofia", "Avery", "Mila", "Aria",
           "Scarlett", "Penelope", "Layla", "Chloe", "Victoria", "Madison", "Eleanor", "Grace",
           "Nora", "Riley", "Zoey", "Hannah", "Hazel", "Lily", "Ellie", "Violet", "Lillian",
           "Zoe", "Stella", "Aurora", "Natalie", "Emilia", "Leah", "Maya", "Ana", "Fatima",
           "Mei", "Yuki", "Priya", "Aisha", "Ingrid", "Chiara", "Zofia", "Noemi", "Renee"]
GIVEN_M = ["Liam", "Noah", "Oliver", "Elijah", "James", "William", "Benjamin", "Lucas", "Henry",
           "Theodore", "Jack", "Levi", "Alexander", "Jackson", "Mateo", "Daniel", "Michael",
           "Mason", "Sebastian", "Ethan", "Logan", "Owen", "Samuel", "Jacob", "Asher", "Aiden",
           "John", "Joseph", "Wyatt", "David", "Leo", "Luke", "Julian", "Hudson", "Grayson",
           "Matthew", "Ezra", "Gabriel", "Carter", "Isaac", "Jayden", "Luca", "Anthony",
           "Dylan", "Lincoln", "Thomas", "Kenji", "Arjun", "Omar", "Piotr", "Jose", "Dmitri"]
FAMILY = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
          "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
          "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
          "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
          "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
          "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
          "Roberts", "O'Brien", "Kowalski", "Müller", "Nakamura", "Okafor", "Haddad", "Novak",
          "Van der Berg", "Da Silva", "Ivanova", "Chen", "Patel", "Kim", "Singh", "Cohen"]
STREET = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
          "Lake View Rd", "Hillcrest Ave", "Park Pl", "Sunset Blvd", "River Rd", "Church St",
          "Mill Rd", "Highland Ave", "Forest Dr", "Spring St", "Meadow Ln", "Bay Rd", "Ridge Rd"]
CITIES = [("Springfield", "IL", "627"), ("Madison", "WI", "537"), ("Portland", "OR", "972"),
          ("Austin", "TX", "787"), ("Columbus", "OH", "432"), ("Raleigh", "NC", "276"),
          ("Denver", "CO", "802"), ("Boston", "MA", "021"), ("Phoenix", "AZ", "850"),
          ("Nashville", "TN", "372"), ("Sacramento", "CA", "958"), ("Albany", "NY", "122"),
          ("Richmond", "VA", "232"), ("Salem", "OR", "973"), ("Tampa", "FL", "336"),
          ("Omaha", "NE", "681"), ("Boise", "ID", "837"), ("Burlington", "VT", "054")]
MARITAL = [("M", "Married"), ("S", "Never Married"), ("D", "Divorced"), ("W", "Widowed"),
           ("L", "Legally Separated"), ("U", "unmarried")]
LANGUAGES = [("en-US", "English (United States)"), ("es", "Spanish"), ("zh", "Chinese"),
             ("vi", "Vietnamese"), ("fr", "French"), ("de", "German"), ("pl", "Polish"),
             ("ar", "Arabic"), ("ja", "Japanese"), ("hi", "Hindi")]
RELATION = [("N", "Next-of-Kin"), ("C", "Emergency Contact"), ("E", "Employer"),
            ("F", "Federal Agency"), ("U", "Unknown")]


def phone(rng):
    return "+1 (%03d) %03d-%04d" % (rng.randint(201, 989), rng.randint(200, 999),
                                    rng.randint(0, 9999))


def address(rng, use):
    city, state, zip3 = rng.choice(CITIES)
    lines = ["%d %s" % (rng.randint(1, 9999), rng.choice(STREET))]
    if rng.random() < 0.3:
        lines.append("Apt %d%s" % (rng.randint(1, 40), rng.choice("ABCDEF")))
    a = {"use": use, "type": "both", "line": lines, "city": city, "state": state,
         "postalCode": "%s%02d" % (zip3, rng.randint(0, 99)), "country": "US"}
    if use == "old":
        start = rng.randint(1995, 2015)
        a["period"] = {"start": "%d-%02d-01" % (start, rng.randint(1, 12)),
                       "end": "%d-%02d-28" % (start + rng.randint(1, 8), rng.randint(1, 12))}
    return a


def patient(rng, n):
    female = rng.random() < 0.51
    given_pool = GIVEN_F if female else GIVEN_M
    family = rng.choice(FAMILY)
    given = [rng.choice(given_pool)]
    if rng.random() < 0.6:
        given.append(rng.choice(given_pool))
    year = rng.randint(1931, 2023)
    birth = "%04d-%02d-%02d" % (year, rng.randint(1, 12), rng.randint(1, 28))
    email_user = ("%s.%s%d" % (given[0], family, rng.randint(1, 99))).lower()
    email_user = "".join(c for c in email_user if c.isascii() and (c.isalnum() or c == "."))
    names = [{"use": "official", "family": family, "given": given}]
    if rng.random() < 0.35:
        names[0]["prefix"] = ["Ms." if female else "Mr."]
    if rng.random() < 0.25:
        names.append({"use": "usual", "given": [given[0][:3]]})
    if female and rng.random() < 0.15:
        names.append({"use": "maiden", "family": rng.choice(FAMILY), "given": given[:1]})
    telecom = [{"system": "phone", "value": phone(rng), "use": "mobile", "rank": 1},
               {"system": "email", "value": "%s@example.org" % email_user}]
    if rng.random() < 0.5:
        telecom.append({"system": "phone", "value": phone(rng), "use": "home", "rank": 2})
    addresses = [address(rng, "home")]
    if rng.random() < 0.3:
        addresses.append(address(rng, "old"))
    code, display = rng.choice(MARITAL)
    lang, lang_display = rng.choice(LANGUAGES)
    rel_code, rel_display = rng.choice(RELATION)
    resource = {
        "resourceType": "Patient",
        "identifier": [
            {"use": "usual",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                  "code": "MR"}]},
             "system": "urn:oid:2.16.840.1.113883.19.5",
             "value": "MRN%08d" % (1000000 + n * 7919 % 9000000)},
            {"use": "official",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                  "code": "SS"}]},
             "system": "http://hl7.org/fhir/sid/us-ssn",
             "value": "%03d-%02d-%04d" % (rng.randint(100, 899), rng.randint(1, 99),
                                          rng.randint(1, 9999))},
        ],
        "active": rng.random() < 0.95,
        "name": names,
        "telecom": telecom,
        "gender": "female" if female else "male",
        "birthDate": birth,
        "address": addresses,
        "maritalStatus": {"coding": [{"system":
                                      "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                      "code": code, "display": display}]},
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}],
                                        "text": lang_display},
                           "preferred": True}],
    }
    if rng.random() < 0.25:
        resource["contact"] = [{
            "relationship": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": rel_code,
                "display": rel_display}]}],
            "name": {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN_F + GIVEN_M)]},
            "telecom": [{"system": "phone", "value": phone(rng), "use": "mobile"}]}]
    if year < 1950 and rng.random() < 0.2:
        resource["deceasedDateTime"] = "%04d-%02d-%02d" % (rng.randint(2015, 2024),
                                                           rng.randint(1, 12), rng.randint(1, 28))
    if rng.random() < 0.5:
        resource["multipleBirthBoolean"] = False
    return resource


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--out", default="-")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    total = 0
    for n in range(args.count):
        line = json.dumps(patient(rng, n), ensure_ascii=False, separators=(",", ":"))
        total += len(line.encode("utf-8"))
        out.write(line + "\n")
    if out is not sys.stdout:
        out.close()
    if args.count:
        print("gen_patients: %d Patients, %.0f bytes on average" % (args.count, total / args.count),
              file=sys.stderr)


if __name__ == "__main__":
    main()
