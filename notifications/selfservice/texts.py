"""What the USSD screens and SMS replies say, in English, Swahili and Luganda.

Each entry is a ``str.format`` pattern. Screens keep to the GSM-7 alphabet (no
"ŋ": Luganda writes "ng'") and, with their longest values, to 160 characters —
the tests render every screen in every language to hold them to it.
"""

from __future__ import annotations

LANGUAGES = ("en", "sw", "lg")
LANGUAGE_NAMES = {"en": "English", "sw": "Kiswahili", "lg": "Luganda"}

TEXTS: dict[str, dict[str, str]] = {
    # --- hints shown above a screen after input it could not take ---------------------
    "hint_choice": {
        "en": "Choose a number from the list.",
        "sw": "Chagua nambari kwenye orodha.",
        "lg": "Londa ennamba eri ku lukalala.",
    },
    "hint_name": {
        "en": "Type 2 to 40 letters.",
        "sw": "Andika herufi 2 hadi 40.",
        "lg": "Wandiika ennukuta 2 okutuuka ku 40.",
    },
    "hint_amount": {
        "en": "Type an amount in whole {cur}, e.g. 5000.",
        "sw": "Andika kiasi kamili cha {cur}, mf. 5000.",
        "lg": "Wandiika omuwendo gwa {cur}, gamba 5000.",
    },
    "hint_amount_range": {
        "en": "Type {cur} {low} to {high}.",
        "sw": "Andika {cur} {low} hadi {high}.",
        "lg": "Wandiika {cur} {low} okutuuka ku {high}.",
    },
    "hint_pin_format": {
        "en": "A PIN is 4 digits.",
        "sw": "PIN ni tarakimu 4.",
        "lg": "PIN ya nnamba 4.",
    },
    "hint_pin_wrong": {
        "en": "Wrong PIN. {left} tries left.",
        "sw": "PIN si sahihi. Umebakiwa na majaribio {left}.",
        "lg": "PIN si ntuufu. Osigazza emirundi {left}.",
    },
    "hint_pin_weak": {
        "en": "Too easy to guess: no 1111 or 1234.",
        "sw": "Ni rahisi kukisia: si 1111 wala 1234.",
        "lg": "Nnyangu okuteebereza: si 1111 oba 1234.",
    },
    "hint_pin_mismatch": {
        "en": "The PINs did not match.",
        "sw": "PIN hazikulingana.",
        "lg": "PIN tezaakwatagana.",
    },
    "hint_text": {
        "en": "Type 3 to 120 characters.",
        "sw": "Andika herufi 3 hadi 120.",
        "lg": "Wandiika ennukuta 3 okutuuka ku 120.",
    },
    # --- a number without an account ------------------------------------------------
    "unknown_welcome": {
        "en": "Welcome. This number has no account.\n1 Register interest\n"
        "2 English\n3 Kiswahili\n4 Luganda",
        "sw": "Karibu. Nambari hii haina akaunti.\n1 Omba kuunganishwa\n"
        "2 English\n3 Kiswahili\n4 Luganda",
        "lg": "Tukusanyukidde. Ennamba eno terina akawunti.\n1 Saba okuyungibwa\n"
        "2 English\n3 Kiswahili\n4 Luganda",
    },
    "ask_name": {"en": "Your full name:", "sw": "Jina lako kamili:", "lg": "Erinnya lyo lyonna:"},
    "ask_place": {
        "en": "Your village or site:",
        "sw": "Kijiji au eneo lako:",
        "lg": "Ekyalo oba ekifo kyo:",
    },
    "interest_done": {
        "en": "Thank you, {name}. We will call you on {phone}.",
        "sw": "Asante, {name}. Tutakupigia kwa {phone}.",
        "lg": "Webale, {name}. Tujja kukukubira ku {phone}.",
    },
    # --- accounts and the main menu ------------------------------------------------
    "choose_account": {
        "en": "Choose account:",
        "sw": "Chagua akaunti:",
        "lg": "Londa akawunti:",
    },
    "main_menu": {
        "en": "{account}\n1 Balance\n2 Last bill\n3 Usage\n4 Pay\n5 Report fault\n"
        "6 Change package\n7 Language\n8 Change PIN",
        "sw": "{account}\n1 Salio\n2 Bili ya mwisho\n3 Matumizi\n4 Lipa\n5 Ripoti hitilafu\n"
        "6 Badili kifurushi\n7 Lugha\n8 Badili PIN",
        "lg": "{account}\n1 Bbalansi\n2 Bbiiru esembayo\n3 Enkozesa\n4 Sasula\n5 Loopa obuzibu\n"
        "6 Kyusa pakeeji\n7 Olulimi\n8 Kyusa PIN",
    },
    # --- the PIN ------------------------------------------------
    "pin_prompt": {
        "en": "Enter your 4-digit PIN:",
        "sw": "Weka PIN yako ya tarakimu 4:",
        "lg": "Yingiza PIN yo ey'ennamba 4:",
    },
    "otp_prompt": {
        "en": "We sent a one-time PIN by SMS to {phone}. Enter it:\n0 Send it again",
        "sw": "Tumetuma PIN ya mara moja kwa SMS kwa {phone}. Iweke:\n0 Tuma tena",
        "lg": "Tukuweerezza PIN ey'omulundi gumu ku SMS ku {phone}. Giyingize:\n"
        "0 Giddemu ogiweereze",
    },
    "new_pin": {
        "en": "Choose a new 4-digit PIN:",
        "sw": "Chagua PIN mpya ya tarakimu 4:",
        "lg": "Londa PIN empya ey'ennamba 4:",
    },
    "confirm_pin": {
        "en": "Enter the new PIN again:",
        "sw": "Weka PIN mpya tena:",
        "lg": "Ddamu oyingize PIN empya:",
    },
    "pin_changed": {
        "en": "Your PIN is changed. Keep it secret.",
        "sw": "PIN yako imebadilishwa. Itunze kwa siri.",
        "lg": "PIN yo ekyusiddwa. Gikuume nga kyama.",
    },
    "locked": {
        "en": "Too many wrong PINs. USSD is locked for this account until {time}.",
        "sw": "PIN zisizo sahihi mara nyingi. USSD imefungwa kwa akaunti hii hadi {time}.",
        "lg": "PIN enkyamu emirundi mingi. USSD esibiddwa ku akawunti eno okutuusa {time}.",
    },
    # --- balance, bill, usage ------------------------------------------------
    "balance_owed": {
        "en": "{account}: you owe {cur} {amount}.",
        "sw": "{account}: unadaiwa {cur} {amount}.",
        "lg": "{account}: obanjibwa {cur} {amount}.",
    },
    "balance_due": {
        "en": " Pay {cur} {amount} by {date}.",
        "sw": " Lipa {cur} {amount} kabla ya {date}.",
        "lg": " Sasula {cur} {amount} nga {date} tennatuuka.",
    },
    "balance_credit": {
        "en": "{account}: you have {cur} {amount} credit.",
        "sw": "{account}: una salio la {cur} {amount}.",
        "lg": "{account}: olina {cur} {amount} ku akawunti.",
    },
    "balance_zero": {
        "en": "{account}: you owe nothing.",
        "sw": "{account}: huna deni.",
        "lg": "{account}: tolina bbanja.",
    },
    "last_bill": {
        "en": "Bill {number} ({period}): {kwh} kWh, {cur} {total}. Amount due {cur} {due}.",
        "sw": "Bili {number} ({period}): kWh {kwh}, {cur} {total}. Deni {cur} {due}.",
        "lg": "Bbiiru {number} ({period}): kWh {kwh}, {cur} {total}. Ebisasulwa {cur} {due}.",
    },
    "last_bill_due": {
        "en": " Due {date}.",
        "sw": " Lipa kabla ya {date}.",
        "lg": " Sasula nga {date} tennatuuka.",
    },
    "no_bill": {
        "en": "{account}: no bill yet.",
        "sw": "{account}: bado hakuna bili.",
        "lg": "{account}: tonnafuna bbiiru.",
    },
    "usage_menu": {
        "en": "Usage:\n1 Today\n2 This month\n3 Last 3 months\n0 Back",
        "sw": "Matumizi:\n1 Leo\n2 Mwezi huu\n3 Miezi 3 iliyopita\n0 Rudi",
        "lg": "Enkozesa:\n1 Leero\n2 Omwezi guno\n3 Emyezi 3 egiyise\n0 Ddayo",
    },
    "usage_today": {
        "en": "Used today: {kwh} kWh.",
        "sw": "Matumizi ya leo: kWh {kwh}.",
        "lg": "Enkozesa ya leero: kWh {kwh}.",
    },
    "usage_month": {
        "en": "Used this month ({month}): {kwh} kWh.",
        "sw": "Matumizi ya mwezi huu ({month}): kWh {kwh}.",
        "lg": "Enkozesa y'omwezi guno ({month}): kWh {kwh}.",
    },
    "usage_months": {
        "en": "Used in the last 3 months:\n{lines}",
        "sw": "Matumizi ya miezi 3 iliyopita:\n{lines}",
        "lg": "Enkozesa y'emyezi 3 egiyise:\n{lines}",
    },
    "usage_sms": {
        "en": "{account}: used today {today} kWh, this month {month} kWh, last month {last} kWh.",
        "sw": "{account}: matumizi leo kWh {today}, mwezi huu kWh {month}, mwezi uliopita "
        "kWh {last}.",
        "lg": "{account}: enkozesa leero kWh {today}, omwezi guno kWh {month}, omwezi "
        "oguwedde kWh {last}.",
    },
    # --- paying ------------------------------------------------
    "pay_amount": {
        "en": "Amount to pay in {cur}:",
        "sw": "Kiasi cha kulipa kwa {cur}:",
        "lg": "Ssente z'osasula mu {cur}:",
    },
    "pay_amount_owed": {
        "en": "You owe {cur} {owed}. Amount to pay:",
        "sw": "Unadaiwa {cur} {owed}. Kiasi cha kulipa:",
        "lg": "Obanjibwa {cur} {owed}. Ssente z'osasula:",
    },
    "pay_confirm": {
        "en": "Pay {cur} {amount} by mobile money from {phone}?\n1 Yes\n2 No",
        "sw": "Lipa {cur} {amount} kwa pesa ya simu kutoka {phone}?\n1 Ndiyo\n2 Hapana",
        "lg": "Sasula {cur} {amount} ku mobile money okuva ku {phone}?\n1 Yee\n2 Nedda",
    },
    "pay_started": {
        "en": "Thank you. A mobile money prompt will follow: approve it with your mobile "
        "money PIN.",
        "sw": "Asante. Utapata ombi la pesa ya simu: likubali kwa PIN yako ya pesa ya simu.",
        "lg": "Webale. Ojja kufuna okusaba kwa mobile money: kukkirize ne PIN yo eya mobile money.",
    },
    "cancelled": {"en": "Cancelled.", "sw": "Imesitishwa.", "lg": "Kisaziddwamu."},
    # --- faults and complaints, packages ------------------------------------------------
    "fault_menu": {
        "en": "Report:\n1 No power\n2 Meter problem\n3 Weak or flickering power\n"
        "4 Bill complaint\n5 Other complaint\n0 Back",
        "sw": "Ripoti:\n1 Hakuna umeme\n2 Tatizo la mita\n3 Umeme hafifu au unakatika\n"
        "4 Malalamiko ya bili\n5 Malalamiko mengine\n0 Rudi",
        "lg": "Loopa:\n1 Tewali masanyalaze\n2 Obuzibu ku mita\n3 Amasanyalaze matono\n"
        "4 Okwemulugunya ku bbiiru\n5 Ekirala\n0 Ddayo",
    },
    "describe": {
        "en": "Describe the problem briefly:",
        "sw": "Eleza tatizo kwa ufupi:",
        "lg": "Nnyonnyola obuzibu mu bufunze:",
    },
    "request_done": {
        "en": "Thank you. Request #{number} is open; our agent will contact you.",
        "sw": "Asante. Ombi #{number} limepokelewa; wakala wetu atawasiliana nawe.",
        "lg": "Webale. Okusaba #{number} kutuuse; omukozi waffe ajja kukutuukirira.",
    },
    "package_menu": {
        "en": "Change package to:\n{lines}\n0 Back",
        "sw": "Badili kifurushi kuwa:\n{lines}\n0 Rudi",
        "lg": "Kyusa pakeeji odde ku:\n{lines}\n0 Ddayo",
    },
    "no_packages": {
        "en": "No other package is offered now.",
        "sw": "Hakuna kifurushi kingine kwa sasa.",
        "lg": "Tewali pakeeji ndala kati.",
    },
    "package_confirm": {
        "en": "Ask to change to {name}?\n1 Yes\n2 No",
        "sw": "Omba kubadili kuwa {name}?\n1 Ndiyo\n2 Hapana",
        "lg": "Saba okukyusa odde ku {name}?\n1 Yee\n2 Nedda",
    },
    "package_done": {
        "en": "Thank you. Request #{number} to change to {name} is open.",
        "sw": "Asante. Ombi #{number} la kubadili kuwa {name} limepokelewa.",
        "lg": "Webale. Okusaba #{number} okukyusa okudda ku {name} kutuuse.",
    },
    # --- language ------------------------------------------------
    "language_menu": {
        "en": "Language:\n1 English\n2 Kiswahili\n3 Luganda\n0 Back",
        "sw": "Lugha:\n1 English\n2 Kiswahili\n3 Luganda\n0 Rudi",
        "lg": "Olulimi:\n1 English\n2 Kiswahili\n3 Luganda\n0 Ddayo",
    },
    "language_done": {
        "en": "Your language is now English.",
        "sw": "Lugha yako sasa ni Kiswahili.",
        "lg": "Olulimi lwo kati Luganda.",
    },
    # --- anything else ------------------------------------------------
    "unavailable": {
        "en": "Sorry, this service is not available now. Please try again later.",
        "sw": "Samahani, huduma hii haipatikani sasa. Tafadhali jaribu tena baadaye.",
        "lg": "Bambi, empeereza eno tekola kati. Ddamu ogezeeko oluvannyuma.",
    },
    "too_long": {
        "en": "This session is too long. Please dial again.",
        "sw": "Kikao hiki ni kirefu mno. Tafadhali piga tena.",
        "lg": "Olutuula luno luwanvu nnyo. Ddamu okubira.",
    },
}

# Fault menu choices: (request kind, what the request says).
FAULT_CHOICES = {
    "1": ("fault", "No power"),
    "2": ("fault", "Meter problem"),
    "3": ("fault", "Weak or flickering power"),
    "4": ("complaint", "Bill complaint"),
}
OTHER_COMPLAINT = "5"


def text(key: str, language: str, **values) -> str:
    """The ``key`` text in ``language`` (English when it has no such language)."""
    patterns = TEXTS[key]
    return patterns.get(language, patterns["en"]).format(**values)
