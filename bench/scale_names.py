"""Names for the hospital-size data set (bench/scale.py).

Thai family names are built the way most of them are: two meaningful parts joined ("ศรี" + "สุข" =
"ศรีสุข", Srisuk), which gives a few hundred distinct names with the repeated syllables real ones have,
so a 3-letter fragment such as "สุข" or "ศรี" matches about as many patients as it would in a hospital.
Given names are common real ones. Latin names carry accents but stay inside Latin-1, so every patient
can be sent to the Latin-1 DX room.
"""

THAI_FAMILY_FIRST = [
    ("ศรี", "Sri"),
    ("บุญ", "Boon"),
    ("ทอง", "Thong"),
    ("แสง", "Saeng"),
    ("ชัย", "Chai"),
    ("วงศ์", "Wong"),
    ("รัตน", "Rattana"),
    ("สุข", "Suk"),
    ("พร", "Phon"),
    ("จันทร์", "Chan"),
    ("เพชร", "Phet"),
    ("ศักดิ์", "Sak"),
    ("กิตติ", "Kitti"),
    ("สมบูรณ์", "Somboon"),
    ("เจริญ", "Charoen"),
    ("มั่น", "Man"),
    ("ธนา", "Thana"),
    ("อินทร์", "In"),
    ("แก้ว", "Kaeo"),
    ("นาค", "Nak"),
    ("ปัญญา", "Panya"),
    ("ใจ", "Jai"),
]
THAI_FAMILY_SECOND = [
    ("สุข", "suk"),
    ("ดี", "dee"),
    ("ทอง", "thong"),
    ("สวัสดิ์", "sawat"),
    ("ประเสริฐ", "prasert"),
    ("วงศ์", "wong"),
    ("ศรี", "sri"),
    ("มา", "ma"),
    ("พงษ์", "pong"),
    ("กุล", "kul"),
    ("ชัย", "chai"),
    ("เจริญ", "charoen"),
    ("รักษ์", "rak"),
    ("สมบูรณ์", "somboon"),
    ("ศักดิ์", "sak"),
    ("พันธ์", "phan"),
    ("วัฒนา", "watthana"),
    ("ยิ่ง", "ying"),
    ("มงคล", "mongkhon"),
    ("นิล", "nin"),
]
THAI_FAMILY = [(a + b, ra + rb) for a, ra in THAI_FAMILY_FIRST for b, rb in THAI_FAMILY_SECOND if a != b]

# fmt: off
THAI_GIVEN = [
    # given name, romanised, sex
    *(
        (t, r, "M")
        for t, r in [
            ("สมชาย", "Somchai"), ("ประเสริฐ", "Prasert"), ("อนันต์", "Anan"), ("กิตติ", "Kitti"),
            ("ธนากร", "Thanakorn"), ("สมศักดิ์", "Somsak"), ("สมพงษ์", "Sompong"), ("วิชัย", "Wichai"),
            ("ชัยวัฒน์", "Chaiwat"), ("สุรชัย", "Surachai"), ("ประยุทธ", "Prayut"), ("อภิชาติ", "Aphichat"),
            ("ณัฐพล", "Natthaphon"), ("ธีรพงษ์", "Theerapong"), ("พิชิต", "Phichit"), ("วีระ", "Weera"),
            ("สมบัติ", "Sombat"), ("บุญชัย", "Boonchai"), ("เกียรติศักดิ์", "Kiattisak"), ("ปิยะ", "Piya"),
            ("ศุภชัย", "Supachai"), ("วัชระ", "Watchara"), ("อำนาจ", "Amnat"), ("สุเทพ", "Suthep"),
            ("ประสิทธิ์", "Prasit"), ("ชาญ", "Chan"), ("เอกชัย", "Ekkachai"), ("ภาณุ", "Phanu"),
            ("ธนพล", "Thanaphon"), ("กฤษดา", "Kritsada"), ("จักรพันธ์", "Chakkraphan"), ("ณรงค์", "Narong"),
            ("ทวีศักดิ์", "Thaweesak"), ("นพดล", "Noppadon"), ("ปกรณ์", "Pakorn"), ("พงศกร", "Phongsakorn"),
            ("รณชัย", "Ronnachai"), ("วรวุฒิ", "Worawut"), ("ศราวุธ", "Sarawut"), ("อดิศร", "Adisorn"),
            ("สุริยา", "Suriya"), ("ชนินทร์", "Chanin"), ("ธวัชชัย", "Thawatchai"), ("บัณฑิต", "Bandit"),
            ("ยุทธนา", "Yutthana"), ("สิทธิชัย", "Sitthichai"), ("อนุชา", "Anucha"), ("ไพโรจน์", "Phairot"),
            ("มนตรี", "Montri"), ("วุฒิชัย", "Wutthichai"),
        ]
    ),
    *(
        (t, r, "F")
        for t, r in [
            ("สมหญิง", "Somying"), ("มาลี", "Malee"), ("วิไลวรรณ", "Wilaiwan"), ("นภา", "Napa"),
            ("สุดารัตน์", "Sudarat"), ("กมลา", "Kamala"), ("จันทร์เพ็ญ", "Chanpen"), ("ดวงใจ", "Duangjai"),
            ("ธิดา", "Thida"), ("นงลักษณ์", "Nonglak"), ("บุษบา", "Butsaba"), ("ปราณี", "Pranee"),
            ("พรทิพย์", "Pornthip"), ("มยุรี", "Mayuree"), ("รัตนา", "Rattana"), ("ลำดวน", "Lamduan"),
            ("วรรณา", "Wanna"), ("ศิริพร", "Siriporn"), ("สุภาพ", "Suphap"), ("อรุณี", "Arunee"),
            ("กาญจนา", "Kanchana"), ("จิราภรณ์", "Jiraporn"), ("ชุติมา", "Chutima"), ("ณัฐธิดา", "Natthida"),
            ("ทิพวรรณ", "Thipphawan"), ("นันทนา", "Nanthana"), ("ปวีณา", "Paweena"),
            ("พิมพ์ชนก", "Phimchanok"), ("เยาวลักษณ์", "Yaowalak"), ("วาสนา", "Wassana"),
            ("ศศิธร", "Sasithon"), ("สุนีย์", "Sunee"), ("อัญชลี", "Anchalee"), ("อำไพ", "Amphai"),
            ("เบญจวรรณ", "Benjawan"), ("ประภาพร", "Praphaporn"), ("ปิยะนุช", "Piyanuch"),
            ("พัชรี", "Phatcharee"), ("มณี", "Manee"), ("รุ่งนภา", "Rungnapa"), ("ลัดดา", "Ladda"),
            ("วนิดา", "Wanida"), ("สมพร", "Somporn"), ("สายสุนีย์", "Saisunee"), ("อุไร", "Urai"),
            ("กัลยา", "Kanlaya"), ("จารุวรรณ", "Jaruwan"), ("ชลธิชา", "Chonthicha"), ("ดารุณี", "Darunee"),
            ("นิตยา", "Nittaya"),
        ]
    ),
]

# fmt: on

LATIN_FAMILY = """
Smith Müller Brown García Dubois Rossi Novák Johansson Tanaka Kowalski Martin Bernard Lefèvre Moreau
Girard Lambert Rousseau Fontaine Chevalier Béranger Mercier Gautier Perrin Rémy Côté Hébert Gagné
Bélanger Schmidt Schneider Fischer Weber Meyer Wagner Becker Schäfer Koch Bauer Krüger Schröder Köhler
Jäger Groß Hoffmann Schulz Fernández López Martínez Sánchez Pérez Gómez Díaz Álvarez Muñoz Jiménez
Rodríguez González Hernández Ruiz Ibáñez Núñez Peña Castaño Silva Santos Gonçalves Conceição Araújo
Simões Magalhães Lourenço Ferreira Almeida Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti
Mancini Costa Giordano Lombardi Moretti Jansen Bakker Visser Smit Meijer Mulder Peeters Janssens Maes
Jacobs Andersson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Pettersson Hansen
Jensen Nielsen Pedersen Sørensen Rasmussen Jørgensen Virtanen Mäkinen Järvinen Nieminen Hämäläinen
O'Brien Murphy Kelly Walsh Byrne Ryan Johnson Williams Jones Miller Davis Wilson Anderson Taylor Thomas
Moore Jackson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill Green Adams
Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart
Morris Rogers Reed Cook Morgan Bell Horváth Nagy Tóth Szabó Kovács Novotný Svoboda Dvořák
""".split()
LATIN_FAMILY = [name for name in LATIN_FAMILY if name != "Dvořák"]  # ř is not Latin-1

LATIN_GIVEN = [
    *(
        (n, "M")
        for n in """John James Robert Michael William David Richard Thomas Charles Daniel Matthew Émile
        Hiroshi José Piotr Jean Pierre Louis François Jérôme André Hans Jürgen Klaus Stefan Lukas Jörg
        Marco Luca Giuseppe Antonio João Tomás Álvaro Raúl Andrés Jesús Lars Sören Anders Björn Mikko
        Jussi Niklas Sean Patrick Liam""".split()
    ),
    *(
        (n, "F")
        for n in """Anna Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Zoë
        Marta Ingrid Chloé Hélène Amélie Céline Noémie Renée Léa Brigitte Jürgen Käthe Monika Sabine Ursula
        Giulia Francesca Chiara María Lucía Inés Sofía Begoña Conceição Beatriz Åsa Märta Linnéa Sigrid
        Aino Päivi Siobhán Aoife Niamh Emma Olivia""".split()
        if n != "Jürgen"
    ),
]

REFERRERS_LATIN = ["Dr Wattana", "Dr Smith", "Dr Somchai", "Dr Müller", "Dr Pérez", "", "", ""]
REFERRERS_ANY = REFERRERS_LATIN + ["นพ. สมศักดิ์", "พญ. มาลี"]
CANCEL_REASONS = [
    "Patient request",
    "Patient did not attend",
    "Duplicate order",
    "Rescheduled by the referring doctor",
    "Contrast allergy found at screening",
    "Scanner out of service",
]
EXAM_REASONS = ["Headache", "Follow-up", "Chest pain", "Trauma", "Screening", "ปวดท้อง", "ไอเรื้อรัง", ""]
EXAM_REASONS_LATIN = [r for r in EXAM_REASONS if r.isascii()]
